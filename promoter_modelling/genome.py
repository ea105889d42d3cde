"""Reference genome access: pyfaidx index, batched window extraction, TSS windows.

Genomes live at `<data>/common/hg38.fa` and `<data>/common/hg19.fa` (UCSC, gunzipped).
Single intervals come from pyfaidx; batches of windows are gathered straight from a memory
map of the FASTA file through its .fai index (position -> byte offset), so extracting a
million windows costs a few fancy-indexing passes instead of a million Python calls.

Bases come back as uint8 codes (sequence.py: A0 C1 G2 T3 N4); soft-masked (lowercase) bases
are read as their uppercase code, any other letter (IUPAC ambiguity codes) as N, and
positions outside a chromosome as N.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pyfaidx

from promoter_modelling import download
from promoter_modelling.errors import InputError
from promoter_modelling.sequence import COMPLEMENT_CODE, N_CODE, reverse_complement, reverse_complement_codes

GENOME_URLS: dict[str, str] = {
    "hg38": "https://hgdownload.soe.ucsc.edu/goldenPath/hg38/bigZips/hg38.fa.gz",
    "hg19": "https://hgdownload.soe.ucsc.edu/goldenPath/hg19/bigZips/hg19.fa.gz",
}
# Upper bound on bases gathered at once (bounds the int64 index arrays to ~256 MB).
MAX_GATHER = 1 << 25

_BYTE_CODES = np.full(256, N_CODE, dtype=np.uint8)
for _code, _base in enumerate("ACGT"):
    _BYTE_CODES[ord(_base)] = _code
    _BYTE_CODES[ord(_base.lower())] = _code
_IS_GC = np.zeros(256, dtype=np.uint8)
for _base in "GCgc":
    _IS_GC[ord(_base)] = 1


def genome_path(common_dir: str, build: str) -> str:
    """Where the FASTA of a build is expected (`<common_dir>/<build>.fa`)."""
    return os.path.join(common_dir, f"{build}.fa")


def missing_genome_message(path: str, build: str | None = None) -> str:
    """One line telling the user which file to fetch and where to put it."""
    url = GENOME_URLS.get(build or "", "the UCSC bigZips <build>.fa.gz")
    return f"{path}: reference genome not found; download {url}, gunzip it and place it at {path}"


def ensure_genome(common_dir: str, build: str) -> str:
    """Download (and gunzip) the UCSC FASTA of `build` unless it is already in `common_dir`."""
    path = genome_path(common_dir, build)
    if os.path.exists(path):
        return path
    if build not in GENOME_URLS:
        raise InputError(missing_genome_message(path, build))
    return download.fetch(path, url=GENOME_URLS[build], gunzip=True)


def tss_window_starts(tss: np.ndarray, strand: np.ndarray, w0: int, w1: int) -> np.ndarray:
    """0-based start of the window [w0, w1) around 1-based TSS positions.

    Plus strand: [tss + w0 - 1, tss + w1 - 1). Minus strand (strand -1 or "-"):
    [tss - w1 - 1, tss - w0 - 1), read reverse-complemented. These are the published
    coordinates; on the minus strand they put the TSS base at window index -w0 - 1.
    """
    tss = np.asarray(tss, dtype=np.int64)
    minus = is_minus(strand)
    return np.where(minus, tss - w1 - 1, tss + w0 - 1)


def is_minus(strand: np.ndarray | Sequence) -> np.ndarray:
    """Boolean minus-strand mask from strands given as -1/1, "-"/"+" or booleans (True = minus)."""
    strand = np.asarray(strand)
    if strand.dtype.kind == "b":
        return strand
    if strand.dtype.kind in "iuf":
        return strand < 0
    return strand.astype(str) == "-"


class Genome:
    """A FASTA genome opened with pyfaidx, with vectorised batch extraction."""

    def __init__(self, path: str, build: str | None = None) -> None:
        if not os.path.exists(path):
            raise InputError(missing_genome_message(path, build))
        self.path = path
        try:
            self._fasta = pyfaidx.Fasta(path, as_raw=True, sequence_always_upper=True)
        except (pyfaidx.FastaIndexingError, ValueError, OSError) as exc:
            raise InputError(f"{path}: cannot index the genome FASTA ({str(exc).splitlines()[0]})") from exc
        self._index = self._fasta.faidx.index
        self._bytes = np.memmap(path, dtype=np.uint8, mode="r")

    @property
    def chrom_lengths(self) -> dict[str, int]:
        return {name: rec.rlen for name, rec in self._index.items()}

    def __contains__(self, chrom: str) -> bool:
        return chrom in self._index

    def _record(self, chrom: str):
        record = self._index.get(chrom)
        if record is None:
            raise InputError(f"{self.path}: chromosome {chrom!r} not in the genome "
                             f"(has {', '.join(list(self._index)[:5])}...)")
        return record

    def fetch(self, chrom: str, start: int, end: int, strand: str | int = "+") -> str:
        """Uppercase sequence of 0-based [start, end) (N outside the chromosome), reverse-
        complemented on the minus strand. One pyfaidx call: for single intervals."""
        length = self._record(chrom).rlen
        lo, hi = max(start, 0), min(end, length)
        core = str(self._fasta[chrom][lo:hi]) if hi > lo else ""
        seq = "N" * (min(lo, end) - start) + core + "N" * max(0, end - max(hi, start))
        return reverse_complement(seq) if bool(is_minus([strand])[0]) else seq

    def _byte_offsets(self, chrom: str, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """File offsets of 0-based positions and a mask of those inside the chromosome."""
        rec = self._record(chrom)
        inside = (positions >= 0) & (positions < rec.rlen)
        safe = np.where(inside, positions, 0)
        return rec.offset + (safe // rec.lenc) * rec.lenb + safe % rec.lenc, inside

    def _gather(self, chrom: str, positions: np.ndarray) -> np.ndarray:
        offsets, inside = self._byte_offsets(chrom, positions)
        codes = _BYTE_CODES[self._bytes[offsets]]
        codes[~inside] = N_CODE
        return codes

    def fetch_codes(self, chroms: Sequence[str] | np.ndarray, starts: np.ndarray, length: int,
                    strands: np.ndarray | Sequence | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """(N, length) uint8 codes of the windows [start, start + length) on each chromosome,
        reverse-complemented where the strand is minus. `out` may be a memory-mapped array:
        it is filled block by block."""
        if out is None:
            out = np.empty((len(starts), length), dtype=np.uint8)
        starts = np.asarray(starts, dtype=np.int64)
        minus = np.zeros(len(starts), dtype=bool) if strands is None else is_minus(strands)
        for rows, chrom in _rows_by_chromosome(chroms):
            for block in _blocks(rows, max(1, MAX_GATHER // max(length, 1))):
                codes = self._gather(chrom, starts[block, None] + np.arange(length))
                flip = minus[block]
                codes[flip] = reverse_complement_codes(codes[flip])
                out[block] = codes
        return out

    def iter_ragged(self, chroms: Sequence[str] | np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                    strands: np.ndarray | Sequence | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (row indices, flat codes) blocks of variable-length intervals, each interval's
        codes contiguous in row order (reverse-complemented on the minus strand)."""
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        minus = np.zeros(len(starts), dtype=bool) if strands is None else is_minus(strands)
        for rows, chrom in _rows_by_chromosome(chroms):
            for block in _ragged_blocks(rows, lengths, MAX_GATHER):
                lens = lengths[block]
                ends = np.cumsum(lens)
                within = np.arange(ends[-1]) - np.repeat(ends - lens, lens)
                flip = np.repeat(minus[block], lens)
                within = np.where(flip, np.repeat(lens, lens) - 1 - within, within)
                codes = self._gather(chrom, np.repeat(starts[block], lens) + within)
                codes[flip] = COMPLEMENT_CODE[codes[flip]]
                yield block, codes

    def gc_counts(self, chrom: str, starts: np.ndarray, ends: np.ndarray, block: int = 1 << 24) -> np.ndarray:
        """Number of G/C bases in each 0-based [start, end) of one chromosome.

        Prefix sums over the chromosome, evaluated only at the requested positions and
        built block by block, so the cost is one pass over the chromosome whatever the
        number and coverage of the intervals."""
        rec = self._record(chrom)
        starts = np.clip(np.asarray(starts, dtype=np.int64), 0, rec.rlen)
        ends = np.clip(np.asarray(ends, dtype=np.int64), 0, rec.rlen)
        points = np.concatenate([starts, ends])
        # byte offset of position p (p == rlen maps to the end of the record)
        byte = rec.offset + (points // rec.lenc) * rec.lenb + points % rec.lenc
        order = np.argsort(byte, kind="stable")
        sorted_bytes = byte[order]
        prefix = np.zeros(len(points), dtype=np.int64)
        first, last = rec.offset, int(byte.max()) if len(byte) else rec.offset
        running, cursor = 0, 0
        for b0 in range(first, last + 1, block):
            b1 = min(b0 + block, last + 1)
            cum = np.cumsum(_IS_GC[self._bytes[b0:b1]], dtype=np.int32)
            stop = int(np.searchsorted(sorted_bytes, b1, side="left"))
            here = order[cursor:stop]
            rel = byte[here] - b0
            taken = cum[np.clip(rel - 1, 0, max(len(cum) - 1, 0))] if len(cum) else np.zeros(len(rel), np.int64)
            prefix[here] = running + np.where(rel > 0, taken, 0)
            running += int(cum[-1]) if len(cum) else 0
            cursor = stop
        return prefix[len(starts):] - prefix[:len(starts)]


def _rows_by_chromosome(chroms: Sequence[str] | np.ndarray) -> Iterator[tuple[np.ndarray, str]]:
    chroms = np.asarray(chroms).astype(str)
    if chroms.size == 0:
        return
    names, inverse = np.unique(chroms, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
    for i, name in enumerate(names):
        yield order[bounds[i]:bounds[i + 1]], str(name)


def _blocks(rows: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def _ragged_blocks(rows: np.ndarray, lengths: np.ndarray, max_bases: int) -> Iterator[np.ndarray]:
    """Split rows into consecutive blocks holding at most `max_bases` bases (at least one row)."""
    if len(rows) == 0:
        return
    cum = np.cumsum(lengths[rows])
    start = 0
    while start < len(rows):
        base = cum[start - 1] if start else 0
        stop = max(int(np.searchsorted(cum, base + max_bases, side="right")), start + 1)
        yield rows[start:stop]
        start = stop


def promoter_windows(genome: Genome, chroms: Sequence[str] | np.ndarray, tss: np.ndarray, strands: np.ndarray,
                     windows: Sequence[Sequence[int]]) -> np.ndarray:
    """(genes, windows, L) uint8 codes of windows [w0, w1) around each 1-based TSS, in
    transcript orientation. Every window must have the same length L."""
    lengths = {int(w1) - int(w0) for w0, w1 in windows}
    if len(lengths) != 1 or min(lengths) <= 0:
        raise InputError(f"promoter windows {list(windows)} must all have the same positive length")
    length = lengths.pop()
    out = np.empty((len(tss), len(windows), length), dtype=np.uint8)
    for j, (w0, w1) in enumerate(windows):
        out[:, j] = genome.fetch_codes(chroms, tss_window_starts(tss, strands, int(w0), int(w1)), length, strands)
    return out
