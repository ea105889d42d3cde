"""STARRSeq: STARRPeaker fold change of ENCODE STARR-seq peaks in K562 and HepG2 (masked regression).

Raw data in `<data>/STARRSeq/`: one STARRPeaker BED per cell (ENCODE ENCFF045TVA for K562,
ENCFF047LDJ for HepG2; no header, 11 tab-separated columns), and the genome
`<data>/common/hg38.fa`.

1. Each BED is read and checked as a whole (pandas): every line must have 11 fields, integer
   start < end, a finite fold_change and a strand of +, - or .; the first bad line is reported.
2. Peaks on contigs outside the chromosome split lists (chrM, `_random`, `chrUn...`) are
   dropped, with one printed line saying how many (the published code drops them silently).
3. Sequence: the BED interval, 0-based [start, end) (`coordinates="bed"`), or as published one
   base upstream, [start - 1, end - 1) (`coordinates="published"`); reverse-complemented on the
   minus strand; upper case. An interval outside its chromosome is an error.
4. The two cells are outer-merged on (sequence, chromosome, start, end): only identical
   intervals with identical sequences merge. Targets are the raw fold changes (no log), NaN
   (and mask False) where a cell has no peak; outputs [K562, HepG2].
5. Split by chromosome (train 1, 3, 5-8, 11, 12, 14-16, 18, 19, 22, X, Y; val 4, 17; test 2, 9,
   10, 13, 20, 21).

Cache (`<data>/STARRSeq/`): `final_dataset.tsv` (sequence, chromosome, start, end, K562, HepG2,
split; train, val and test rows in loader order) and per split the concatenated uint8 codes
`{split}_seqs.npy` with their int64 `{split}_offsets.npy`, float32 `{split}_targets.npy` (NaN
where unmeasured) and bool `{split}_mask.npy`, all memory-mapped on load. Batches are right-
padded with the PAD code (an all-zero one-hot position, as the published zero padding) to the
longest sequence of the batch, so only length-agnostic backbones can read them.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pandas as pd
import torch

from promoter_modelling.download import atomic_path
from promoter_modelling.errors import InputError
from promoter_modelling.genome import Genome
from promoter_modelling.heads import MASKED_REGRESSION, HeadSpec
from promoter_modelling.io_utils import load_npy, save_npy
from promoter_modelling.sequence import COMPLEMENT_CODE, PAD_CODE
from promoter_modelling.tasks.base import BatchedDataset, RawFile, TaskContext, TaskDataModule
from promoter_modelling.tasks.chromosome_split import (
    SPLITS,
    TEST_CHROMOSOMES,
    TRAIN_CHROMOSOMES,
    VAL_CHROMOSOMES,
    chromosome_split,
    split_lists,
)
from promoter_modelling.tasks.genome_input import GenomeInput
from promoter_modelling.tasks.storage import npy_writer, ragged_offsets, ragged_take

CELLS = ("K562", "HepG2")
BED_FILES = {"K562": "K562_repMerged_starrpeaker.peak.final.bed",
             "HepG2": "HepG2_repMerged_starrpeaker.peak.final.bed"}
ACCESSIONS = {"K562": "ENCFF045TVA", "HepG2": "ENCFF047LDJ"}
URL = "https://www.encodeproject.org/files/{accession}/@@download/{accession}.bed.gz"
BED_COLUMNS = ["chromosome", "start", "end", "name", "score", "strand", "fold_change", "output_coverage",
               "input_coverage", "log_pval", "log_qval"]
COORDINATES = ("bed", "published")
STARRSEQ_TRAIN_CHROMOSOMES = (*TRAIN_CHROMOSOMES, "X", "Y")  # the published STARRSeq list adds X and Y
TABLE_FILE = "final_dataset.tsv"
TSV_CHUNK = 20_000  # rows per chunk of final_dataset.tsv (bounds the sequence strings held at once)
_LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)


# --- reading -------------------------------------------------------------------------------
def _line_fields(path: str) -> tuple[np.ndarray, np.ndarray]:
    """1-based numbers of the non-blank lines of a text file and their number of tab-separated
    fields, counted on the raw bytes (vectorised)."""
    data = np.fromfile(path, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if len(data) and data[-1] != ord("\n"):
        ends = np.append(ends, len(data))
    starts = np.concatenate([[0], ends[:-1] + 1])[:len(ends)].astype(np.int64)
    stripped = ends - ((ends > starts) & (data[np.maximum(ends - 1, 0)] == ord("\r")))  # CRLF line ends
    tabs = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum(data == ord("\t"), out=tabs[1:])
    fields = tabs[stripped] - tabs[starts] + 1
    nonblank = stripped > starts
    return np.flatnonzero(nonblank) + 1, fields[nonblank]


def read_starrpeaker_bed(path: str) -> pd.DataFrame:
    """Peaks of one STARRPeaker BED: chromosome, start, end (int64), strand, fold_change
    (float64) and the 1-based file `line` of each peak.

    Raises a one-line InputError naming the file and the first bad line: a wrong number of
    fields, a start or end that is not an integer, end <= start, a fold_change that is not a
    finite number or a strand other than +, - and ."""
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    lines, fields = _line_fields(path)
    if len(lines) == 0:
        raise InputError(f"{path}: no peaks (the file is empty)")
    wrong = np.flatnonzero(fields != len(BED_COLUMNS))
    if wrong.size:
        i = int(wrong[0])
        raise InputError(f"{path}: line {lines[i]}: {fields[i]} tab-separated field(s), expected {len(BED_COLUMNS)} "
                         f"({', '.join(BED_COLUMNS)})")
    try:
        bed = pd.read_csv(path, sep="\t", header=None, names=BED_COLUMNS, usecols=[0, 1, 2, 5, 6], dtype=str,
                          keep_default_na=False, na_filter=False, quoting=csv.QUOTE_NONE, engine="c")
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
        raise InputError(f"{path}: cannot be parsed as a BED file ({str(exc).splitlines()[0]})") from exc
    if len(bed) != len(lines):
        raise InputError(f"{path}: cannot be parsed as a BED file ({len(bed)} rows read from {len(lines)} lines)")
    start = pd.to_numeric(bed["start"], errors="coerce").to_numpy(dtype=np.float64)
    end = pd.to_numeric(bed["end"], errors="coerce").to_numpy(dtype=np.float64)
    fold = pd.to_numeric(bed["fold_change"], errors="coerce").to_numpy(dtype=np.float64)
    strand = bed["strand"].to_numpy(dtype=object)
    bad_start = ~(np.isfinite(start) & (start == np.round(start)))
    bad_end = ~(np.isfinite(end) & (end == np.round(end)))
    checks = [
        (bad_start, lambda i: f"start {bed['start'].iloc[i]!r} is not an integer"),
        (bad_end, lambda i: f"end {bed['end'].iloc[i]!r} is not an integer"),
        (~bad_start & ~bad_end & ~(end > start),
         lambda i: f"end {bed['end'].iloc[i]} is not after start {bed['start'].iloc[i]}"),
        (~np.isfinite(fold), lambda i: f"fold_change {bed['fold_change'].iloc[i]!r} is not a finite number"),
        (~np.isin(strand, ["+", "-", "."]), lambda i: f"strand {strand[i]!r} is not +, - or ."),
    ]
    failing = np.column_stack([mask for mask, _ in checks])
    rows = np.flatnonzero(failing.any(axis=1))
    if rows.size:
        i = int(rows[0])
        message = checks[int(np.argmax(failing[i]))][1](i)
        raise InputError(f"{path}: line {lines[i]}: {message}")
    return pd.DataFrame({"chromosome": bed["chromosome"].to_numpy(dtype=object), "start": start.astype(np.int64),
                         "end": end.astype(np.int64), "strand": strand, "fold_change": fold, "line": lines})


# --- sequences -----------------------------------------------------------------------------
def check_intervals(peaks: pd.DataFrame, genome: Genome, shift: int, path: str) -> None:
    """Every extraction interval [start - shift, end - shift) must lie on its chromosome."""
    lengths = genome.chrom_lengths
    size = peaks["chromosome"].map(lengths).to_numpy(dtype=np.float64)  # NaN: not in the genome
    missing = np.flatnonzero(np.isnan(size))
    if missing.size:
        row = peaks.iloc[int(missing[0])]
        raise InputError(f"{path}: line {row['line']}: chromosome {row['chromosome']} is not in the genome "
                         f"{genome.path}")
    lo = peaks["start"].to_numpy() - shift
    hi = peaks["end"].to_numpy() - shift
    outside = np.flatnonzero((lo < 0) | (hi > size))
    if outside.size:
        i = int(outside[0])
        row = peaks.iloc[i]
        read = f" (read as [{lo[i]}, {hi[i]}) with coordinates='published')" if shift else ""
        raise InputError(f"{path}: line {row['line']}: interval [{row['start']}, {row['end']}){read} lies outside "
                         f"chromosome {row['chromosome']} (length {int(size[i])})")


def palindromic(genome: Genome, chroms: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Whether each interval reads the same on both strands (its sequence is its own reverse
    complement)."""
    out = np.zeros(len(starts), dtype=bool)
    for block, codes in genome.iter_ragged(chroms, starts, lengths):
        lens = np.asarray(lengths)[block]
        offsets = ragged_offsets(lens)
        first = np.repeat(offsets[:-1], lens)
        within = np.arange(len(codes)) - first
        mirror = first + np.repeat(lens, lens) - 1 - within
        same = codes == COMPLEMENT_CODE[codes[mirror]]
        out[block] = np.logical_and.reduceat(same, offsets[:-1]) if len(codes) else True
    return out


def merge_cells(peaks: dict[str, pd.DataFrame], genome: Genome, shift: int) -> pd.DataFrame:
    """Outer merge of the cells' peaks on (sequence, chromosome, start, end).

    The sequence of a peak is fixed by its interval and its orientation, so the merge key is
    (chromosome, start, end, minus), where a palindromic minus-strand peak counts as plus (its
    sequence equals the plus strand's; only intervals read on both strands are checked). Rows
    are in natural chromosome order, then start, end. Returns chromosome, start, end, minus and
    one fold-change column per cell (NaN: no peak)."""
    interval = ["chromosome", "start", "end"]
    minus = {cell: (frame["strand"] == "-").to_numpy().copy() for cell, frame in peaks.items()}
    both = pd.concat([frame[interval].assign(minus=minus[cell]) for cell, frame in peaks.items()])
    both = both.groupby(interval, sort=False)["minus"].nunique()
    both = both.index[both.to_numpy() > 1]  # intervals with minus and plus / "." peaks
    frames = []
    for cell, frame in peaks.items():
        check = minus[cell] & pd.MultiIndex.from_frame(frame[interval]).isin(both)
        if check.any():
            sub = frame[check]
            minus[cell][check] = ~palindromic(genome, sub["chromosome"].to_numpy(), sub["start"].to_numpy() - shift,
                                              (sub["end"] - sub["start"]).to_numpy())
        frames.append(pd.DataFrame({"chromosome": frame["chromosome"].to_numpy(), "start": frame["start"].to_numpy(),
                                    "end": frame["end"].to_numpy(), "minus": minus[cell],
                                    cell: frame["fold_change"].to_numpy()}))
    keys = ["chromosome", "start", "end", "minus"]
    table = frames[0]
    for frame in frames[1:]:
        table = table.merge(frame, on=keys, how="outer", sort=False)
    chrom = table["chromosome"].astype(str)
    suffix = chrom.str[3:]
    rank = np.where(suffix.str.isdigit(), pd.to_numeric(suffix, errors="coerce").fillna(0), 1000)
    table = table.assign(_rank=rank, _name=np.where(suffix.str.isdigit(), "", chrom))
    table = table.sort_values(["_rank", "_name", "start", "end", "minus"], kind="stable")
    return table.drop(columns=["_rank", "_name"]).reset_index(drop=True)


# --- dataset -------------------------------------------------------------------------------
class PaddedPeakDataset(BatchedDataset):
    """Variable-length peaks (concatenated uint8 codes + int64 offsets) with masked targets.

    A batch is x uint8 (B, Lmax) right-padded with PAD_CODE to its longest peak, y float32
    (B, 2) (NaN where unmeasured) and mask bool (B, 2)."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, y: np.ndarray, mask: np.ndarray) -> None:
        if not len(offsets) == len(y) + 1 == len(mask) + 1:
            raise ValueError(f"{len(offsets) - 1} sequences, {len(y)} targets and {len(mask)} masks")
        self.flat, self.offsets, self.y, self.mask = flat, np.asarray(offsets), y, mask

    def __len__(self) -> int:
        return len(self.y)

    def lengths(self) -> np.ndarray:
        """Length of every sequence."""
        return np.diff(self.offsets)

    def _batch(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        flat, lengths = ragged_take(self.offsets, index)
        width = int(lengths.max()) if len(lengths) else 0
        x = np.full((len(index), width), PAD_CODE, dtype=np.uint8)
        x[np.arange(width)[None, :] < lengths[:, None]] = self.flat[flat]
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(np.array(self.y[index], dtype=np.float32)),
                "mask": torch.from_numpy(np.array(self.mask[index], dtype=bool))}


# --- task ----------------------------------------------------------------------------------
class STARRSeq(GenomeInput, TaskDataModule):
    """Masked regression of the STARRPeaker fold change in K562 and HepG2 (head `STARRSeq`).

    `coordinates`: "bed" reads the BED interval itself; "published" shifts it one base upstream
    as the published code did. --shrink_test_set has no effect (as published)."""

    task_name = "STARRSeq"
    raw_dirname = "STARRSeq"
    OPTIONS = ("coordinates",)
    INPUT_KINDS = ("onehot",)
    SHRINKS_TEST_SET = False

    @classmethod
    def run_options(cls, context: TaskContext) -> dict[str, object]:
        """Sequence coordinates as --starrseq_coordinates says (default: the BED interval)."""
        return {"coordinates": context.data.starrseq_coordinates}

    def __init__(self, data_dir: str, batch_size: int = 96, num_workers: int = 0, seed: int = 0,
                 shrink_test_set: bool = False, coordinates: str = "bed") -> None:
        # the published STARRSeq data loader has no shrink_test_set
        super().__init__(data_dir, batch_size, num_workers, seed, shrink_test_set=False)
        if coordinates not in COORDINATES:
            raise InputError(f"STARRSeq coordinates must be {' or '.join(COORDINATES)}, got {coordinates!r}")
        self.coordinates = coordinates
        self.lists = split_lists(STARRSEQ_TRAIN_CHROMOSOMES, VAL_CHROMOSOMES, TEST_CHROMOSOMES)
        self.head = HeadSpec("STARRSeq", list(CELLS), kind=MASKED_REGRESSION)
        self.table: pd.DataFrame | None = None

    @property
    def shift(self) -> int:
        """Bases the extraction interval lies upstream of the BED interval (1 as published)."""
        return 1 if self.coordinates == "published" else 0

    # raw inputs --------------------------------------------------------------------------
    def raw_files(self) -> list[RawFile]:
        return [RawFile(BED_FILES[cell], url=URL.format(accession=ACCESSIONS[cell]), gunzip=True) for cell in CELLS]

    def input_paths(self) -> list[str]:
        return super().input_paths() + [self.genome_path]

    def cache_params(self) -> dict:
        return {"coordinates": self.coordinates, "chromosomes": self.lists}

    # cache ---------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self.cache_dir, name)

    def build_cache(self) -> None:
        genome = self.genome()
        split_chroms = ["chr" + c for split in SPLITS for c in self.lists[split]]
        peaks, dropped, example = {}, 0, None
        for cell in CELLS:  # read and check everything before writing anything
            path = os.path.join(self.raw_dir, BED_FILES[cell])
            frame = read_starrpeaker_bed(path)
            keep = frame["chromosome"].isin(split_chroms).to_numpy()
            if not keep.all():
                dropped += int((~keep).sum())
                example = example or str(frame["chromosome"].to_numpy()[~keep][0])
            frame = frame[keep].reset_index(drop=True)
            check_intervals(frame, genome, self.shift, path)
            peaks[cell] = frame
        if dropped:
            print(f"STARRSeq: dropped {dropped} peak(s) on contigs outside the split chromosome lists "
                  f"(e.g. {example})")
        table = merge_cells(peaks, genome, self.shift)
        if table.empty:
            raise InputError(f"{self.raw_dir}: no STARR-seq peak lies on the split chromosomes (chr1-22, X, Y)")
        table["split"] = chromosome_split(table["chromosome"].to_numpy(), self.lists, prefix="chr")
        parts = []
        for split in SPLITS:
            part = table[table["split"] == split].reset_index(drop=True)
            self._write_split(split, part, genome)
            parts.append(part)
        self._write_table(parts)

    def _write_split(self, split: str, part: pd.DataFrame, genome: Genome) -> None:
        lengths = (part["end"] - part["start"]).to_numpy(dtype=np.int64)
        offsets = ragged_offsets(lengths)
        with npy_writer(self._path(f"{split}_seqs.npy"), (int(offsets[-1]),), np.uint8) as flat:
            for block, codes in genome.iter_ragged(part["chromosome"].to_numpy(), part["start"].to_numpy() - self.shift,
                                                   lengths, part["minus"].to_numpy()):
                flat[ragged_take(offsets, block)[0]] = codes
        targets = part[list(CELLS)].to_numpy(dtype=np.float32)
        save_npy(self._path(f"{split}_offsets.npy"), offsets)
        save_npy(self._path(f"{split}_targets.npy"), targets)
        save_npy(self._path(f"{split}_mask.npy"), np.isfinite(targets))

    def _write_table(self, parts: list[pd.DataFrame]) -> None:
        """final_dataset.tsv (published columns + split), written in chunks from the cached codes."""
        columns = ["sequence", "chromosome", "start", "end", *CELLS, "split"]
        with atomic_path(self._path(TABLE_FILE)) as tmp, open(tmp, "w", encoding="ascii", newline="") as handle:
            handle.write("\t".join(columns) + "\n")
            for split, part in zip(SPLITS, parts):
                flat = load_npy(self._path(f"{split}_seqs.npy"))
                offsets = np.asarray(load_npy(self._path(f"{split}_offsets.npy")))
                for a in range(0, len(part), TSV_CHUNK):
                    b = min(a + TSV_CHUNK, len(part))
                    text = _LETTERS[flat[offsets[a]:offsets[b]]].tobytes().decode("ascii")
                    local = offsets[a:b + 1] - offsets[a]
                    chunk = part.iloc[a:b][columns[1:]].copy()
                    chunk.insert(0, "sequence", [text[i:j] for i, j in zip(local[:-1], local[1:])])
                    chunk.to_csv(handle, sep="\t", header=False, index=False)

    def load_datasets(self) -> None:
        for split in SPLITS:
            dataset = PaddedPeakDataset(load_npy(self._path(f"{split}_seqs.npy")),
                                        load_npy(self._path(f"{split}_offsets.npy")),
                                        load_npy(self._path(f"{split}_targets.npy")),
                                        load_npy(self._path(f"{split}_mask.npy")))
            setattr(self, f"{split}_dataset", dataset)

    def peak_table(self) -> pd.DataFrame:
        """The cached table: one row per merged peak, train, val and test rows in loader order."""
        self.prepare()
        if self.table is None:
            self.table = pd.read_csv(self._path(TABLE_FILE), sep="\t", dtype={"chromosome": str})
        return self.table

    def split_table(self, split: str) -> pd.DataFrame:
        """The rows of one split, in the order its loader serves them."""
        table = self.peak_table()
        return table[table["split"] == split].reset_index(drop=True)
