"""ENCODETFChIPSeq: which TF ChIP-seq data sets have a peak in a 600-bp region (masked BCE).

Raw data (manual download) in `<data>/ENCODETFChIPSeq_data/`: the ENCODE portal export
`metadata.tsv` and one IDR-thresholded narrowPeak file `{File accession}.bed.gz` per row.

1. Metadata: GRCh38 rows; in experiments with several rows the "ENCODE3 GRCh38" analysis is
   dropped; then one row per experiment. Output name "{Biosample}_{Target}_{File accession}".
2. Peaks with qValue >= -log10(0.05); data sets with fewer than 1000 such peaks are skipped.
   Summit = start + peak; chromosomes 1-22 only.
3. Grouping, per chromosome in numeric position order: a peak joins the current group if it
   lies within 100 bp of the group's first peak, else it opens a new group. The region is
   600 bp around the rounded mean summit (0-based [avg - 301, avg + 299), as published).
4. Negatives: one dinucleotide shuffle of every region (tangermeme, seeded per region).
5. Items interleave each region (targets 1) and its shuffle (targets 0) on the outputs of the
   group's data sets; every other output is -1 and masked out. Split by chromosome.

Output names are sorted, so the head layout is the same in every process.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pandas as pd
import torch

from promoter_modelling.errors import InputError
from promoter_modelling.heads import MASKED_MULTILABEL, HeadSpec
from promoter_modelling.io_utils import load_npy, read_table, save_npy, save_table, save_text
from promoter_modelling.tasks.base import BatchedDataset, RawFile, TaskDataModule
from promoter_modelling.tasks.chromosome_split import (
    SPLITS,
    TEST_CHROMOSOMES,
    TRAIN_CHROMOSOMES,
    VAL_CHROMOSOMES,
    chromosome_split,
    split_lists,
)
from promoter_modelling.tasks.genome_input import GenomeInput
from promoter_modelling.tasks.lazy_head import HeadFromData
from promoter_modelling.tasks.storage import npy_writer, ragged_take

log = logging.getLogger(__name__)

METADATA_FILE = "metadata.tsv"
ARCHIVE_URL = "https://drive.google.com/file/d/1VLVjRf3nFLSYEamTKm_zN5cObdS1BJc3"
METADATA_COLUMNS = ["File accession", "File assembly", "Experiment accession", "File analysis title",
                    "Biosample term name", "Experiment target"]
NARROWPEAK_COLUMNS = ["chromosome", "start", "end", "name", "score", "strand", "signalValue", "pValue",
                      "qValue", "peak"]
SHUFFLE_CHUNK = 20_000


# --- metadata and peaks --------------------------------------------------------------------
def read_metadata(path: str) -> pd.DataFrame:
    """GRCh38 rows, one per experiment, with the output `name` of each data set."""
    meta = read_table(path, "\t", METADATA_COLUMNS, dtype=str, keep_default_na=False)
    meta = meta[meta["File assembly"] == "GRCh38"]
    repeated = meta["Experiment accession"].duplicated(keep=False)
    meta = meta[~(repeated & (meta["File analysis title"] == "ENCODE3 GRCh38"))].reset_index(drop=True)
    still = meta["Experiment accession"].duplicated()
    if still.any():
        raise InputError(f"{path}: experiment {meta['Experiment accession'][still].iloc[0]} has more than one "
                         "GRCh38 peak file after dropping ENCODE3 analyses")
    if meta.empty:
        raise InputError(f"{path}: no GRCh38 rows")
    meta["name"] = meta["Biosample term name"] + "_" + meta["Experiment target"] + "_" + meta["File accession"]
    return meta


def read_narrowpeak(path: str, q_value_threshold: float) -> pd.DataFrame:
    """Significant peaks of one gzipped narrowPeak file: chromosome and summit position."""
    try:
        bed = pd.read_csv(path, sep="\t", header=None, names=NARROWPEAK_COLUMNS, usecols=[0, 1, 8, 9],
                          dtype={"chromosome": str})
    except pd.errors.EmptyDataError:  # a data set without peaks
        return pd.DataFrame({"chromosome": np.zeros(0, dtype=object), "position": np.zeros(0, dtype=np.int64)})
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as a gzipped narrowPeak file ({str(exc).splitlines()[0]})") from exc
    numbers = pd.DataFrame({c: pd.to_numeric(bed[c], errors="coerce") for c in ("start", "qValue", "peak")})
    bad = np.flatnonzero(numbers.isna().any(axis=1).to_numpy())
    if bad.size:
        raise InputError(f"{path}: line {bad[0] + 1}: start, qValue or peak is not a number")
    keep = numbers["qValue"].to_numpy() >= -np.log10(q_value_threshold)
    summit = (numbers["start"].to_numpy() + numbers["peak"].to_numpy()).astype(np.int64)
    return pd.DataFrame({"chromosome": bed["chromosome"].to_numpy()[keep], "position": summit[keep]})


def collect_peaks(directory: str, meta: pd.DataFrame, q_value_threshold: float, min_num_peaks: int,
                  chromosomes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """All significant peaks of the data sets that pass the filters, on `chromosomes`.

    Returns (peaks: chromosome, position, output index; sorted output names)."""
    frames, names = [], []
    present = 0
    for accession, name in zip(meta["File accession"], meta["name"]):
        path = os.path.join(directory, f"{accession}.bed.gz")
        if not os.path.exists(path):
            log.warning("%s: not found, data set %s skipped", path, name)
            continue
        present += 1
        peaks = read_narrowpeak(path, q_value_threshold)
        if len(peaks) < min_num_peaks:
            log.info("%s: %d significant peaks (< %d), skipped", path, len(peaks), min_num_peaks)
            continue
        frames.append(peaks.assign(name=name))
        names.append(name)
    if present == 0:
        raise InputError(f"{directory}: none of the {len(meta)} GRCh38 peak files of {METADATA_FILE} "
                         f"(e.g. {meta['File accession'].iloc[0]}.bed.gz) is there; extract {ARCHIVE_URL} into it")
    if not frames:
        raise InputError(f"{directory}: no data set has {min_num_peaks} peaks with qValue >= "
                         f"-log10({q_value_threshold}); lower min_num_peaks")
    output_names = sorted(names)
    peaks = pd.concat(frames, ignore_index=True)
    peaks = peaks[peaks["chromosome"].isin(chromosomes)].reset_index(drop=True)
    index = pd.Index(output_names).get_indexer(peaks.pop("name"))
    return peaks.assign(output=index.astype(np.int32)), output_names


# --- grouping ------------------------------------------------------------------------------
def chromosome_order(names: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes of chromosome names in natural order (chr1, chr2, ..., chr10, ...) and the names."""
    unique = sorted(set(np.asarray(names).astype(str).tolist()),
                    key=lambda c: (0, int(c[3:])) if c[3:].isdigit() else (1, c))
    return pd.Index(unique).get_indexer(names), unique


def group_peaks(chrom_codes: np.ndarray, positions: np.ndarray, max_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy grouping in (chromosome, position) order.

    A peak joins the open group if it is on the same chromosome and at most `max_offset`
    after the group's first peak; otherwise it opens a group. Returns (order: peak indices
    sorted by chromosome and position, group: group index of each sorted peak)."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size and (positions.min() < 0 or positions.max() >= 1 << 40):
        raise InputError("peak positions must lie in [0, 2^40)")
    key = (np.asarray(chrom_codes, dtype=np.int64) << 41) + positions
    order = np.argsort(key, kind="stable")
    key = key[order]
    jump = np.searchsorted(key, key + max_offset, side="right").tolist()  # first peak beyond the group
    anchor = np.zeros(len(key), dtype=bool)
    i = 0
    while i < len(jump):
        anchor[i] = True
        i = jump[i]
    return order, np.cumsum(anchor) - 1


def summarise_groups(order: np.ndarray, group: np.ndarray, peaks: pd.DataFrame, num_outputs: int,
                     region_size: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per group: chromosome, first and rounded mean summit, extraction region, and the
    sorted distinct outputs (CSR: indptr, outputs) of its peaks."""
    pos = peaks["position"].to_numpy()[order]
    n_groups = int(group[-1]) + 1 if len(group) else 0
    counts = np.bincount(group, minlength=n_groups)
    avg = np.round(np.bincount(group, weights=pos, minlength=n_groups) / counts).astype(np.int64)
    first = np.searchsorted(group, np.arange(n_groups))
    half = region_size // 2
    table = pd.DataFrame({
        "chromosome": peaks["chromosome"].to_numpy()[order][first],
        "ori_peak_position": pos[first],
        "num_peaks": counts,
        "avg_peak_position": avg,
        "extraction_region_start": avg - half,
        "extraction_region_end": avg - half + region_size,
    })
    pairs = np.unique(group.astype(np.int64) * num_outputs + peaks["output"].to_numpy()[order])
    indptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs // num_outputs, minlength=n_groups), out=indptr[1:])
    return table, indptr, (pairs % num_outputs).astype(np.int32)


# --- negatives -----------------------------------------------------------------------------
def dinucleotide_shuffle_codes(codes: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """One dinucleotide-preserving shuffle of each row of (N, L) uint8 codes; row i uses
    seed `seeds[i]`, so the result does not depend on how rows are batched. N is kept as a
    character of its own. Uses tangermeme's packed (2-bit) path, which gives the same
    shuffles as its one-hot path without building one-hot arrays."""
    from tangermeme.ersatz import dinucleotide_shuffle
    from tangermeme.utils import PackedSequence

    if len(codes) == 0:
        return codes.copy()
    packed = PackedSequence.from_codes(torch.from_numpy(np.ascontiguousarray(codes)))
    shuffled = dinucleotide_shuffle(packed, n=1, random_state=[int(s) for s in seeds], allow_N=True)
    return shuffled.to_codes()[:, 0].numpy()


# --- dataset -------------------------------------------------------------------------------
class PeakGroupDataset(BatchedDataset):
    """Items 2i and 2i+1 are the region of group `groups[i]` and its shuffle.

    Returns x uint8 (L,), y float32 (K,) (1 / 0 on the group's outputs, -1 elsewhere) and
    mask bool (K,) (True on the group's outputs)."""

    def __init__(self, positives: np.ndarray, negatives: np.ndarray, indptr: np.ndarray, outputs: np.ndarray,
                 groups: np.ndarray, num_outputs: int) -> None:
        self.positives, self.negatives = positives, negatives
        self.indptr, self.outputs = indptr, outputs
        self.groups = np.asarray(groups, dtype=np.int64)
        self.num_outputs = num_outputs

    def __len__(self) -> int:
        return 2 * len(self.groups)

    def _batch(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        group = self.groups[index // 2]
        positive = index % 2 == 0
        x = np.empty((len(index), self.positives.shape[1]), dtype=np.uint8)
        x[positive] = self.positives[group[positive]]
        x[~positive] = self.negatives[group[~positive]]
        flat, counts = ragged_take(self.indptr, group)
        rows = np.repeat(np.arange(len(index)), counts)
        cols = self.outputs[flat]
        y = np.full((len(index), self.num_outputs), -1.0, dtype=np.float32)
        mask = np.zeros((len(index), self.num_outputs), dtype=bool)
        y[rows, cols] = positive[rows]
        mask[rows, cols] = True
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(y), "mask": torch.from_numpy(mask)}


# --- task ----------------------------------------------------------------------------------
class ENCODETFChIPSeq(GenomeInput, HeadFromData, TaskDataModule):
    """Masked multi-label classification over the ENCODE TF ChIP-seq data sets (head
    `ENCODETFChIPSeq`). The output names come from the data: reading `head` prepares the task."""

    task_name = "ENCODETFChIPSeq"
    OPTIONS = ("region_size", "max_peak_offset_for_grouping", "q_value_threshold", "min_num_peaks", "shuffle_seed",
               "train_chromosomes", "val_chromosomes", "test_chromosomes")
    raw_dirname = "ENCODETFChIPSeq_data"
    cache_dirname = "ENCODETFChIPSeq"
    head_name = "ENCODETFChIPSeq"

    def __init__(self, data_dir: str, batch_size: int = 96, num_workers: int = 0, seed: int = 0,
                 shrink_test_set: bool = False, region_size: int = 600, max_peak_offset_for_grouping: int = 100,
                 q_value_threshold: float = 0.05, min_num_peaks: int = 1000, shuffle_seed: int = 97,
                 train_chromosomes: list[str] | tuple = TRAIN_CHROMOSOMES,
                 val_chromosomes: list[str] | tuple = VAL_CHROMOSOMES,
                 test_chromosomes: list[str] | tuple = TEST_CHROMOSOMES) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, shrink_test_set)
        if region_size <= 0 or region_size % 2:
            raise InputError(f"region_size must be a positive even number, got {region_size}")
        self.region_size = region_size
        self.max_offset = max_peak_offset_for_grouping
        self.q_value_threshold = q_value_threshold
        self.min_num_peaks = min_num_peaks
        self.shuffle_seed = shuffle_seed
        self.lists = split_lists(train_chromosomes, val_chromosomes, test_chromosomes)
        self.groups: pd.DataFrame | None = None

    def raw_files(self) -> list[RawFile]:
        manual = (f"download {ARCHIVE_URL} and extract it into {self.raw_dir}/ so that it holds {METADATA_FILE} "
                  "and the {File accession}.bed.gz peak files")
        return [RawFile(METADATA_FILE, manual=manual)]

    def _metadata(self) -> pd.DataFrame:
        return read_metadata(os.path.join(self.raw_dir, METADATA_FILE))

    def input_paths(self) -> list[str]:
        beds = [os.path.join(self.raw_dir, f"{a}.bed.gz") for a in self._metadata()["File accession"]]
        return super().input_paths() + [p for p in beds if os.path.exists(p)] + [self.genome_path]

    def cache_params(self) -> dict:
        return {"region_size": self.region_size, "max_offset": self.max_offset, "q": self.q_value_threshold,
                "min_num_peaks": self.min_num_peaks, "shuffle_seed": self.shuffle_seed, "chromosomes": self.lists}

    def _path(self, name: str) -> str:
        return os.path.join(self.cache_dir, name)

    def build_cache(self) -> None:
        chromosomes = ["chr" + c for split in SPLITS for c in self.lists[split]]
        peaks, names = collect_peaks(self.raw_dir, self._metadata(), self.q_value_threshold, self.min_num_peaks,
                                     chromosomes)
        if peaks.empty:
            raise InputError(f"{self.raw_dir}: no significant peak lies on the split chromosomes")
        codes, _ = chromosome_order(peaks["chromosome"].to_numpy())
        order, group = group_peaks(codes, peaks["position"].to_numpy(), self.max_offset)
        table, indptr, outputs = summarise_groups(order, group, peaks, len(names), self.region_size)
        table["split"] = chromosome_split(table["chromosome"].to_numpy(), self.lists, prefix="chr")
        genome = self.genome()
        n, length = len(table), self.region_size
        # published get_sequence(chr, start, end) reads 0-based [start - 1, end - 1)
        starts = table["extraction_region_start"].to_numpy() - 1
        with npy_writer(self._path("peak_seqs.npy"), (n, length), np.uint8) as positives:
            genome.fetch_codes(table["chromosome"].to_numpy(), starts, length, out=positives)
            with npy_writer(self._path("neg_seqs.npy"), (n, length), np.uint8) as negatives:
                for a in range(0, n, SHUFFLE_CHUNK):
                    b = min(a + SHUFFLE_CHUNK, n)
                    negatives[a:b] = dinucleotide_shuffle_codes(np.asarray(positives[a:b]),
                                                                self.shuffle_seed + np.arange(a, b))
        save_npy(self._path("group_indptr.npy"), indptr)
        save_npy(self._path("group_outputs.npy"), outputs)
        for split in SPLITS:
            save_npy(self._path(f"{split}_groups.npy"), np.flatnonzero(table["split"].to_numpy() == split))
        save_table(table, self._path("merged_peaks.tsv"))
        save_text(json.dumps(names), self._path("output_names.json"))

    def load_datasets(self) -> None:
        with open(self._path("output_names.json"), encoding="utf-8") as handle:
            names = json.load(handle)
        self.head = HeadSpec(self.head_name, names, kind=MASKED_MULTILABEL)
        arrays = [load_npy(self._path(f)) for f in ("peak_seqs.npy", "neg_seqs.npy")]
        indptr = np.asarray(load_npy(self._path("group_indptr.npy")))
        outputs = np.asarray(load_npy(self._path("group_outputs.npy")))
        for split in SPLITS:
            groups = np.asarray(load_npy(self._path(f"{split}_groups.npy")))
            setattr(self, f"{split}_dataset", PeakGroupDataset(*arrays, indptr, outputs, groups, len(names)))

    def group_table(self) -> pd.DataFrame:
        """The cached table of merged peak groups (one row per region)."""
        self.prepare()
        if self.groups is None:
            self.groups = pd.read_csv(self._path("merged_peaks.tsv"), sep="\t")
        return self.groups
