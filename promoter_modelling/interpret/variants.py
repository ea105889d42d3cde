"""Effects of genomic variants on promoter activity, predicted by a model of 250-bp promoter windows.

Promoters come from a TSS table (gene, chrom, position, strand) or the Ensembl BioMart table of
the RNA-seq tasks. Each promoter is read as those tasks read it: the windows [w0, w1) around its
TSS (by default [-300, -50), [-100, 150) and [100, 350)), extracted with `tss_window_starts` and
read in transcript orientation (reverse-complemented on the minus strand); its prediction is the
mean over its windows, as the models predict multi-window inputs.

Which promoters a variant affects: those with a window overlapping the variant's REF span, and,
for a variant that changes the sequence length, also those where it lies between the TSS and a
window (it moves that window's bases). With the default windows, which cover the TSS, both are
the same: the REF span overlaps [-300, 350). A variant affecting no promoter gets one row with
status `outside_promoter_windows`.

The ALT allele rebuilds every window of the promoter from the ALT haplotype. Windows keep their
length and their place relative to the TSS: a substitution changes bases in place; for an
insertion or deletion, the bases on the far side of the variant from the TSS shift (a deletion
pulls in bases from beyond the window end, an insertion pushes bases out), while the bases
between the TSS and the variant stay where they are. In genome coordinates: the region around
the windows is fetched with a margin of `max_indel` bases on both sides, REF is replaced by ALT
and each window is taken left-aligned (same start) when the variant is at or after the TSS
(VCF POS >= TSS, both 1-based), right-aligned (same end) when it is before it; minus-strand
windows are then reverse-complemented. The rule needs no case for the strand: on either strand
the genomic side of the TSS that keeps its coordinates is the side away from the variant. A
deletion that removes the TSS itself counts as before it when it starts before it.

Symbolic ALT alleles are reported as `unsupported_allele` and insertions or deletions changing
the length by more than `max_indel` bases as `indel_too_long`, neither predicted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from promoter_modelling.errors import InputError, first_line
from promoter_modelling.genome import Genome, is_minus, promoter_windows, tss_window_starts
from promoter_modelling.interpret.vcf import open_text
from promoter_modelling.io_utils import read_table
from promoter_modelling.predict import write_predictions
from promoter_modelling.sequence import COMPLEMENT_CODE, encode_flat, reverse_complement_codes
from promoter_modelling.tasks import rnaseq

SCORED = "scored"
OUTSIDE = "outside_promoter_windows"
UNSUPPORTED = "unsupported_allele"
TOO_LONG = "indel_too_long"
STATUSES = (SCORED, OUTSIDE, UNSUPPORTED, TOO_LONG)
OUTPUT_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "gene", "strand", "tss_distance", "cell", "ref_pred",
                  "alt_pred", "delta", "delta_spread", "status")
TSS_COLUMNS = ("gene", "chrom", "position", "strand")
STRAND_VALUES = {"+": 1, "-": -1, "1": 1, "-1": -1}
PROMOTER_KINDS = ("auto", "tss", "ensembl")

Predictor = Callable[[np.ndarray], np.ndarray]


# --- options -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VariantOptions:
    """How variants are scored.

    windows: promoter windows [w0, w1) around the TSS, all of one length (default: the three
    windows of the RNA-seq tasks); max_indel: longest length change of an insertion or deletion
    that is scored; batch_size: windows per call of the model; progress: a progress bar on
    stderr."""

    windows: tuple[tuple[int, int], ...] = rnaseq.PROMOTER_WINDOWS
    max_indel: int = 50
    batch_size: int = 1024
    progress: bool = True

    def __post_init__(self) -> None:
        windows = tuple((int(w0), int(w1)) for w0, w1 in self.windows)
        object.__setattr__(self, "windows", windows)
        lengths = {w1 - w0 for w0, w1 in windows}
        if not windows or len(lengths) != 1 or min(lengths) <= 0:
            shown = " ".join(f"{w0},{w1}" for w0, w1 in windows) or "(none)"
            raise InputError(f"windows {shown}: give one or more windows START,END of one positive length "
                             "(e.g. -300,-50 -100,150 100,350)")
        if self.max_indel < 0:
            raise InputError(f"max_indel must be 0 or more, got {self.max_indel}")
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")

    @property
    def length(self) -> int:
        """Length of every window (the model's input length)."""
        w0, w1 = self.windows[0]
        return w1 - w0


# --- promoters -----------------------------------------------------------------------------------

def _header(path: str) -> str:
    """First line of a (possibly gzipped) table, for recognising its format."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found")
    try:
        with open_text(path) as handle:
            return handle.readline()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"{path}: cannot be read as a text table ({first_line(exc)})") from exc


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def _read_tss_table(path: str, header: str) -> pd.DataFrame:
    """gene, chrom, tss, strand of a TSS table (columns matched case-insensitively)."""
    sep = "\t" if "\t" in header else ","
    table = read_table(path, sep, dtype=str, keep_default_na=False)
    names = {str(c).strip().lower(): c for c in table.columns}
    missing = [c for c in TSS_COLUMNS if c not in names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, table.columns))}); "
                         "a TSS table has gene, chrom, position, strand (or give the Ensembl BioMart table)")
    columns = {c: table[names[c]].astype(str).str.strip() for c in TSS_COLUMNS}
    position, strand = columns["position"], columns["strand"]
    row = _first_bad((columns["chrom"] == "").to_numpy())
    if row is not None:
        raise InputError(f"{path}: row {row + 2}: chrom is empty")
    row = _first_bad((~position.str.fullmatch(r"[0-9]{1,18}") | (position.str.lstrip("0") == "")).to_numpy())
    if row is not None:
        raise InputError(f"{path}: row {row + 2}: position {position.iloc[row]!r} is not a positive integer")
    row = _first_bad(~strand.isin(list(STRAND_VALUES)).to_numpy())
    if row is not None:
        raise InputError(f"{path}: row {row + 2}: strand {strand.iloc[row]!r} is not +, -, 1 or -1")
    return pd.DataFrame({"gene": columns["gene"], "chrom": columns["chrom"], "tss": position.astype(np.int64),
                         "strand": strand.map(STRAND_VALUES).astype(np.int64)})


def _read_ensembl_table(path: str) -> pd.DataFrame:
    """gene (stable id), chrom ("chr" + name, as the RNA-seq tasks), tss, strand of the BioMart table."""
    table = rnaseq.read_ensembl(path)
    return pd.DataFrame({"gene": table[rnaseq.GENE_ID].astype(str),
                         "chrom": "chr" + table[rnaseq.CHROMOSOME].astype(str),
                         "tss": table[rnaseq.TSS].astype(np.int64),
                         "strand": table[rnaseq.STRAND].astype(np.int64)})


def read_promoters(path: str, kind: str = "auto") -> pd.DataFrame:
    """Promoters to score: a TSS table or the Ensembl BioMart table of the RNA-seq tasks.

    Parameters
    ----------
    path : a TSV/CSV table with columns gene, chrom, position (1-based TSS) and strand (+, -, 1
        or -1), or the BioMart table (Gene stable ID, Chromosome/scaffold name, Transcription
        start site (TSS), Strand; one promoter per gene, chromosome "chr" + name).
    kind : "tss", "ensembl", or "auto" (the BioMart table is recognised by its header).

    Returns
    -------
    A table with gene, chrom, tss (1-based int64) and strand (1 / -1), one row per promoter.
    """
    if kind not in PROMOTER_KINDS:
        raise ValueError(f"kind must be one of {PROMOTER_KINDS}, got {kind!r}")
    if kind == "ensembl":
        return _read_ensembl_table(path)
    if kind == "auto":
        header = _header(path)
        if rnaseq.GENE_ID in header and rnaseq.TSS in header:
            return _read_ensembl_table(path)
    return _read_tss_table(path, _header(path))


def _names_hint(name: str, known: Sequence[str]) -> str:
    """"it has chr1, chr2, chr3, ...; did you mean 'chr1'?" for a chromosome name not in `known`."""
    shown = ", ".join(list(known)[:3]) + (", ..." if len(known) > 3 else "")
    other = name[3:] if name.startswith("chr") else "chr" + name
    return f"it has {shown}" + (f"; did you mean {other!r}?" if other in known else "")


def check_promoters(promoters: pd.DataFrame, genome: Genome, source: str = "promoters") -> None:
    """Refuse a promoter table none of whose chromosomes is in the genome (e.g. "1" for "chr1")."""
    chroms = pd.unique(promoters["chrom"].astype(str))
    known = list(genome.chrom_lengths)
    if not any(c in genome for c in chroms):
        raise InputError(f"{source}: no promoter is on a chromosome of {genome.path} (the table has "
                         f"{', '.join(chroms[:3])}{', ...' if len(chroms) > 3 else ''}; {_names_hint(chroms[0], known)})")


# --- variants ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Variants:
    """numpy views of a variant table."""

    chrom: np.ndarray
    pos0: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    ref_len: np.ndarray
    alt_len: np.ndarray
    supported: np.ndarray
    line: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Variants:
        alt = frame["alt"].astype(str)
        supported = (frame["supported"].to_numpy(dtype=bool) if "supported" in frame
                     else alt.str.fullmatch("[ACGTNacgtn]+").to_numpy(dtype=bool))
        line = frame["line"].to_numpy(np.int64) if "line" in frame else np.arange(1, len(frame) + 1)
        return cls(frame["chrom"].astype(str).to_numpy(), frame["pos"].to_numpy(np.int64) - 1,
                   frame["ref"].astype(str).str.upper().to_numpy(), alt.str.upper().to_numpy(),
                   frame["ref"].astype(str).str.len().to_numpy(np.int64), alt.str.len().to_numpy(np.int64),
                   supported, line)


def _source(variants: pd.DataFrame) -> str:
    return str(variants.attrs.get("path", "variants"))


def _ref_mismatches(genome: Genome, var: _Variants, rows: np.ndarray) -> np.ndarray:
    """Mask over `rows`: REF differs from the genome (upper-case codes, N only matching N)."""
    mismatch = np.zeros(len(var.chrom), dtype=bool)
    for block, codes in genome.iter_ragged(var.chrom[rows], var.pos0[rows], var.ref_len[rows]):
        picked = rows[block]
        expected = encode_flat(var.ref[picked].tolist(), var.ref_len[picked])
        offsets = np.concatenate([[0], np.cumsum(var.ref_len[picked])[:-1]])
        mismatch[picked] = np.add.reduceat(codes != expected, offsets) > 0
    return mismatch[rows]


def check_variants(variants: pd.DataFrame, genome: Genome, source: str | None = None) -> None:
    """Refuse, naming the first offending VCF line, a variant on a chromosome the genome lacks, a
    REF running past the chromosome end, or a REF that disagrees with the genome.

    Parameters
    ----------
    variants : a table of `read_vcf`.
    genome : the reference the VCF was called against.
    source : the VCF path for messages (default: `variants.attrs["path"]`).
    """
    source = source or _source(variants)
    var = _Variants.of(variants)
    lengths = genome.chrom_lengths
    chrom_length = pd.Series(var.chrom).map(lengths).to_numpy(dtype=np.float64)
    unknown = np.isnan(chrom_length)
    beyond = ~unknown & (var.pos0 + 1 > chrom_length)
    past_end = ~unknown & ~beyond & (var.pos0 + var.ref_len > chrom_length)
    inside = np.flatnonzero(~(unknown | beyond | past_end))
    mismatch = np.zeros(len(var.chrom), dtype=bool)
    mismatch[inside] = _ref_mismatches(genome, var, inside)
    row = _first_bad(unknown | beyond | past_end | mismatch)
    if row is None:
        return
    chrom, pos, ref, n = var.chrom[row], int(var.pos0[row]) + 1, var.ref[row], int(var.line[row])
    where = f"{source}: line {n}:"
    if unknown[row]:
        raise InputError(f"{where} chromosome {chrom!r} is not in {genome.path} ({_names_hint(chrom, list(lengths))})")
    if beyond[row]:
        raise InputError(f"{where} position {pos} is beyond the end of {chrom} ({lengths[chrom]} bp in {genome.path})")
    if past_end[row]:
        raise InputError(f"{where} REF {ref!r} at {chrom}:{pos} runs past the end of {chrom} "
                         f"({lengths[chrom]} bp in {genome.path})")
    actual = genome.fetch(chrom, pos - 1, pos - 1 + len(ref))
    raise InputError(f"{where} REF {ref!r} at {chrom}:{pos} disagrees with the reference {genome.path} ({actual!r})")


# --- windows and overlaps ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Promoters:
    """numpy views of a promoter table and the genomic starts of its windows."""

    chrom: np.ndarray
    tss0: np.ndarray
    minus: np.ndarray
    starts: np.ndarray
    length: int

    @classmethod
    def of(cls, frame: pd.DataFrame, options: VariantOptions) -> _Promoters:
        return cls(frame["chrom"].astype(str).to_numpy(), frame["tss"].to_numpy(np.int64) - 1,
                   is_minus(frame["strand"].to_numpy()), window_starts(frame, options.windows), options.length)

    def hull(self) -> tuple[np.ndarray, np.ndarray]:
        """0-based [start, end) spanning each promoter's windows and its TSS."""
        lo = np.minimum(self.starts.min(axis=1), self.tss0)
        hi = np.maximum(self.starts.max(axis=1) + self.length, self.tss0 + 1)
        return lo, hi


def window_starts(promoters: pd.DataFrame, windows: Sequence[Sequence[int]]) -> np.ndarray:
    """(promoters, windows) 0-based genomic starts of the windows (`tss_window_starts`)."""
    tss, strand = promoters["tss"].to_numpy(np.int64), promoters["strand"].to_numpy()
    columns = [tss_window_starts(tss, strand, int(w0), int(w1)) for w0, w1 in windows]
    return np.stack(columns, axis=1) if columns else np.zeros((len(tss), 0), dtype=np.int64)


def reference_windows(genome: Genome, promoters: pd.DataFrame, windows: Sequence[Sequence[int]]) -> np.ndarray:
    """(promoters, windows, L) uint8 codes of the windows in transcript orientation, exactly as
    the RNA-seq tasks extract them."""
    return promoter_windows(genome, promoters["chrom"].astype(str).to_numpy(), promoters["tss"].to_numpy(np.int64),
                            promoters["strand"].to_numpy(), windows)


def _expand(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, index) for every index in each [left[i], right[i]), without a Python loop."""
    counts = np.maximum(right - left, 0)
    owner = np.repeat(np.arange(len(left)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(left, counts) + within


def _pairs_on_chromosome(var: _Variants, prom: _Promoters, v_rows: np.ndarray,
                         p_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Affected (variant, promoter) pairs among variants `v_rows` and promoters `p_rows` of one
    chromosome: sort by hull start, search candidates, keep true overlaps."""
    lo, hi = prom.hull()
    order = p_rows[np.argsort(lo[p_rows], kind="stable")]
    sorted_lo = lo[order]
    widest = int((hi[p_rows] - lo[p_rows]).max())
    v0 = var.pos0[v_rows]
    v1 = v0 + var.ref_len[v_rows]
    left = np.searchsorted(sorted_lo, v0 - widest + 1, side="left")
    right = np.searchsorted(sorted_lo, v1, side="left")
    owner, index = _expand(left, right)
    v, p = v_rows[owner], order[index]
    v0, v1 = v0[owner], v1[owner]
    in_hull = hi[p] > v0
    starts = prom.starts[p]
    in_window = ((starts < v1[:, None]) & (starts + prom.length > v0[:, None])).any(axis=1)
    shifts = var.supported[v] & (var.alt_len[v] != var.ref_len[v])
    keep = in_hull & (in_window | shifts)
    return v[keep], p[keep]


def _affected_pairs(var: _Variants, prom: _Promoters) -> tuple[np.ndarray, np.ndarray]:
    """(variant index, promoter index) of every affected pair, sorted by variant then promoter."""
    found_v, found_p = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    p_groups = pd.Series(np.arange(len(prom.chrom))).groupby(prom.chrom).indices if len(prom.chrom) else {}
    v_groups = pd.Series(np.arange(len(var.chrom))).groupby(var.chrom).indices if len(var.chrom) else {}
    for chrom, v_rows in v_groups.items():
        if chrom in p_groups:
            v, p = _pairs_on_chromosome(var, prom, np.asarray(v_rows), np.asarray(p_groups[chrom]))
            found_v.append(v)
            found_p.append(p)
    v, p = np.concatenate(found_v), np.concatenate(found_p)
    order = np.lexsort((p, v))
    return v[order], p[order]


def affected_promoters(variants: pd.DataFrame, promoters: pd.DataFrame,
                       options: VariantOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every (variant row, promoter row) pair where the variant changes a window of the promoter.

    Parameters
    ----------
    variants : a table of `read_vcf`.
    promoters : a table of `read_promoters`.
    options : the windows.

    Returns
    -------
    Two int arrays of positional row indices, sorted by variant then promoter.
    """
    options = options or VariantOptions()
    return _affected_pairs(_Variants.of(variants), _Promoters.of(promoters, options))


# --- ALT windows ---------------------------------------------------------------------------------

def _substitute(out: np.ndarray, rows: np.ndarray, var: _Variants, prom: _Promoters, v: np.ndarray,
                p: np.ndarray) -> None:
    """Write single-base substitutions of pairs `rows` into `out` (K, W, L), vectorised."""
    length = prom.length
    offset = var.pos0[v[rows]][:, None] - prom.starts[p[rows]]
    k, j = np.nonzero((offset >= 0) & (offset < length))
    offset = offset[k, j]
    minus = prom.minus[p[rows[k]]]
    base = encode_flat(var.alt[v[rows[k]]].tolist())
    out[rows[k], j, np.where(minus, length - 1 - offset, offset)] = np.where(minus, COMPLEMENT_CODE[base], base)


def _edited_windows(genome: Genome, var: _Variants, prom: _Promoters, v: int, p: int, margin: int) -> np.ndarray:
    """(W, L) ALT windows of one variant in one promoter (any REF / ALT lengths); see the module
    docstring for the rule."""
    length, starts, pos0, ref_len = prom.length, prom.starts[p], int(var.pos0[v]), int(var.ref_len[v])
    lo = min(int(starts.min()), pos0) - margin
    hi = max(int(starts.max()) + length, pos0 + ref_len) + margin
    region = genome.fetch_codes([var.chrom[v]], np.array([lo]), hi - lo)[0]
    alt = encode_flat([var.alt[v]])
    edited = np.concatenate([region[:pos0 - lo], alt, region[pos0 - lo + ref_len:]])
    if pos0 >= prom.tss0[p]:  # at or after the TSS: bases left of the variant keep their place
        first = starts - lo
    else:  # before the TSS: bases right of the variant keep their place
        first = len(edited) - (hi - starts)
    windows = edited[first[:, None] + np.arange(length)]
    return reverse_complement_codes(windows) if prom.minus[p] else windows


def _alt_codes(genome: Genome, var: _Variants, prom: _Promoters, v: np.ndarray, p: np.ndarray, reference: np.ndarray,
               margin: int) -> np.ndarray:
    out = np.array(reference, dtype=np.uint8, copy=True)
    snv = (var.ref_len[v] == 1) & (var.alt_len[v] == 1)
    _substitute(out, np.flatnonzero(snv), var, prom, v, p)
    for k in np.flatnonzero(~snv):  # insertions, deletions and multi-base substitutions: few
        out[k] = _edited_windows(genome, var, prom, int(v[k]), int(p[k]), margin)
    return out


def alt_windows(genome: Genome, variants: pd.DataFrame, promoters: pd.DataFrame, variant_rows: np.ndarray,
                promoter_rows: np.ndarray, options: VariantOptions | None = None) -> np.ndarray:
    """ALT-haplotype windows of variants in promoters (the rule of the module docstring).

    Parameters
    ----------
    genome : the reference genome.
    variants, promoters : tables of `read_vcf` and `read_promoters` (sequence alleles only).
    variant_rows, promoter_rows : positional rows of the pairs (e.g. from `affected_promoters`).
    options : the windows and `max_indel` (the margin fetched around them).

    Returns
    -------
    (pairs, windows, L) uint8 codes in transcript orientation.
    """
    options = options or VariantOptions()
    v, p = np.asarray(variant_rows, dtype=np.int64), np.asarray(promoter_rows, dtype=np.int64)
    reference = reference_windows(genome, promoters.iloc[p], options.windows)
    return _alt_codes(genome, _Variants.of(variants), _Promoters.of(promoters, options), v, p, reference,
                      options.max_indel)


# --- scoring -------------------------------------------------------------------------------------

def _pair_status(var: _Variants, v: np.ndarray, max_indel: int) -> np.ndarray:
    """Status of each pair: unsupported_allele, indel_too_long or scored."""
    too_long = np.abs(var.alt_len[v] - var.ref_len[v]) > max_indel
    return np.where(~var.supported[v], UNSUPPORTED, np.where(too_long, TOO_LONG, SCORED)).astype(object)


def _predict_flat(predict: Predictor, codes: np.ndarray, cells: int) -> np.ndarray:
    """(members, K, cells) predictions of (K, L) windows."""
    out = np.asarray(predict(codes), dtype=np.float64)
    if out.ndim != 3 or out.shape[1:] != (len(codes), cells):
        raise ValueError(f"predict returned shape {out.shape}; expected (members, {len(codes)}, {cells})")
    return out


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="scoring variants", unit="item", disable=not enabled, file=sys.stderr)


def _predict_pairs(genome: Genome, var: _Variants, prom: _Promoters, promoters: pd.DataFrame, v: np.ndarray,
                   p: np.ndarray, predict: Predictor, cells: int,
                   options: VariantOptions) -> tuple[np.ndarray, np.ndarray]:
    """(members, pairs, cells) REF and ALT predictions of scored pairs (means over the windows).

    Each promoter's reference windows are predicted once; an ALT window identical to its
    reference window (a variant outside it) takes the reference prediction instead of a model
    call, so an SNV costs one or two window predictions, not all of them."""
    used, inverse = np.unique(p, return_inverse=True)
    reference = reference_windows(genome, promoters.iloc[used], options.windows)
    windows, length = reference.shape[1:]
    step = max(1, options.batch_size // windows)
    with _progress(len(used) * windows + len(p), options.progress) as bar:
        ref_windows = []  # (members, promoters, W, cells)
        for i in range(0, len(used), step):
            block = reference[i:i + step]
            out = _predict_flat(predict, block.reshape(-1, length), cells)
            ref_windows.append(out.reshape(len(out), len(block), windows, cells))
            bar.update(block.shape[0] * windows)
        ref_windows = np.concatenate(ref_windows, axis=1)
        alt_chunks = []
        for i in range(0, len(p), step):
            rows = slice(i, i + step)
            own = inverse[rows]
            codes = _alt_codes(genome, var, prom, v[rows], p[rows], reference[own], options.max_indel)
            changed = (codes != reference[own]).any(axis=2)  # (k, W)
            alt = ref_windows[:, own].copy()
            if changed.any():
                alt[:, changed] = _predict_flat(predict, codes[changed], cells)
            alt_chunks.append(alt.mean(axis=2))
            bar.update(len(codes))
    return ref_windows.mean(axis=2)[:, inverse], np.concatenate(alt_chunks, axis=1)


def _spread(delta: np.ndarray) -> np.ndarray:
    """Standard deviation over members (axis 0; 0 with one member)."""
    return delta.std(axis=0, ddof=1) if len(delta) > 1 else np.zeros(delta.shape[1:])


def _rows(variants: pd.DataFrame, promoters: pd.DataFrame, var: _Variants, v: np.ndarray, p: np.ndarray | None,
          status: np.ndarray) -> dict[str, np.ndarray]:
    """Variant, promoter and status columns of output rows (`p` None: no promoter)."""
    columns = {c: variants[c].to_numpy()[v] for c in ("chrom", "pos", "id")}
    columns.update(ref=var.ref[v], alt=var.alt[v])
    if p is None:
        columns.update(gene=np.full(len(v), "", dtype=object), strand=np.full(len(v), "", dtype=object),
                       tss_distance=np.full(len(v), np.nan))
    else:
        sign = np.where(is_minus(promoters["strand"].to_numpy())[p], -1, 1)
        columns.update(gene=promoters["gene"].astype(str).to_numpy()[p],
                       strand=np.where(sign < 0, "-", "+").astype(object),
                       tss_distance=(var.pos0[v] + 1 - promoters["tss"].to_numpy(np.int64)[p]) * sign)
    columns["status"] = status
    return columns


def _table(blocks: list[tuple[dict[str, np.ndarray], np.ndarray]]) -> pd.DataFrame:
    """Concatenate row blocks (columns, sort key) in key order; NaN where a block lacks a column."""
    frames = [pd.DataFrame(columns).assign(_key=key) for columns, key in blocks if len(key)]
    if not frames:
        return pd.DataFrame({c: [] for c in OUTPUT_COLUMNS})
    frame = pd.concat(frames, ignore_index=True).sort_values("_key", kind="stable").reset_index(drop=True)
    frame["tss_distance"] = frame["tss_distance"].astype("Int64")
    frame["cell"] = frame["cell"].fillna("") if "cell" in frame else ""
    for column in ("ref_pred", "alt_pred", "delta", "delta_spread"):
        frame[column] = frame[column].astype(np.float64) if column in frame else np.nan
    return frame[list(OUTPUT_COLUMNS)]


def score_variants(variants: pd.DataFrame, promoters: pd.DataFrame, genome: Genome, predict: Predictor,
                   cells: Sequence[str], options: VariantOptions | None = None) -> pd.DataFrame:
    """Predicted effect of every variant on every promoter it affects, per cell.

    Parameters
    ----------
    variants : a table of `read_vcf` (checked against `genome` first: `check_variants`).
    promoters : a table of `read_promoters`.
    genome : the reference genome.
    predict : uint8 codes (K, L) -> (members, K, cells) predictions, e.g. `Ensemble.predict`.
    cells : the names of the predicted cells.
    options : windows, max_indel, batch size, progress bar.

    Returns
    -------
    One row per (variant, affected promoter, cell) with chrom, pos, id, ref, alt, gene, strand,
    tss_distance (POS - TSS along the transcript; negative upstream), cell, ref_pred and alt_pred
    (ensemble means over the promoter's windows), delta (alt - ref), delta_spread (standard
    deviation of the members' deltas) and status `scored`. Unscored pairs (`unsupported_allele`,
    `indel_too_long`) get one row with an empty cell and NaN predictions; a variant affecting no
    promoter gets one row without a gene (`outside_promoter_windows`, or `unsupported_allele`
    for a symbolic allele). Rows follow the variant order of the VCF.
    """
    options = options or VariantOptions()
    check_variants(variants, genome)
    var, prom = _Variants.of(variants), _Promoters.of(promoters, options)
    v, p = _affected_pairs(var, prom)
    status = _pair_status(var, v, options.max_indel)
    alone = np.setdiff1d(np.arange(len(var.chrom)), v)
    alone_status = np.where(var.supported[alone], OUTSIDE, UNSUPPORTED).astype(object)
    pair_key = v * (len(prom.chrom) + 1) + p + 1
    blocks = [(_rows(variants, promoters, var, alone, None, alone_status), alone * (len(prom.chrom) + 1))]
    unscored = status != SCORED
    blocks.append((_rows(variants, promoters, var, v[unscored], p[unscored], status[unscored]), pair_key[unscored]))
    scored = np.flatnonzero(~unscored)
    if scored.size:
        ref, alt = _predict_pairs(genome, var, prom, promoters, v[scored], p[scored], predict, len(cells), options)
        n = len(cells)
        columns = {k: np.repeat(c, n) for k, c in _rows(variants, promoters, var, v[scored], p[scored],
                                                         status[scored]).items()}
        columns.update(cell=np.tile(np.asarray(cells, dtype=object), len(scored)),
                       ref_pred=ref.mean(axis=0).reshape(-1), alt_pred=alt.mean(axis=0).reshape(-1),
                       delta=(alt - ref).mean(axis=0).reshape(-1), delta_spread=_spread(alt - ref).reshape(-1))
        blocks.append((columns, np.repeat(pair_key[scored], n)))
    return _table(blocks)


# --- output --------------------------------------------------------------------------------------

def write_variant_table(frame: pd.DataFrame, path: str) -> str:
    """Write the table of `score_variants` atomically: CSV, TSV (either may end in .gz) or Parquet,
    by the name of `path`. Returns the path."""
    return write_predictions(frame, path)


def summary_line(variants: pd.DataFrame, table: pd.DataFrame) -> str:
    """One line counting the variants (ALT alleles) read, scored, outside windows and unsupported."""
    keys = ["chrom", "pos", "id", "ref", "alt", "status"]
    counts = table[keys].drop_duplicates()["status"].value_counts()
    count = {s: int(counts.get(s, 0)) for s in STATUSES}
    return (f"{len(variants)} variants read: {count[SCORED]} scored, {count[OUTSIDE]} outside promoter windows, "
            f"{count[UNSUPPORTED]} with an unsupported allele, {count[TOO_LONG]} indels too long")
