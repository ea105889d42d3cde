"""SuRE: expression of random genomic fragments in K562 and HepG2 (van Arensbergen et al. 2019).

One data module per genome (SuRE42_HG02601, SuRE43_GM18983, SuRE44_HG01241, SuRE45_HG03464);
the `SuRE_classification` and `SuRE_regression` groups expand to the four. Raw data: the OSF
zip of a genome, unzipped into `<data>/SuRE_data/<genome>/`: gzipped tab files with a header,
columns chr, start, end (1-based inclusive, hg19), strand, SNPrelpos, SNPbaseInf and
expression columns SuRE* (HepG2 when the name contains HEPG2, K562 otherwise).

1. Drop fragments whose SNPbaseInf contains an ambiguity code (R Y M K S W H B V D N).
2. Per cell: mean of its expression columns; class = min(ceil(mean / 10), 4), i.e. 0 for no
   expression, then (0,10], (10,20], (20,30], > 30.
3. GC content of the reference fragment (prefix sums over the chromosome, one pass).
4. GC-matched subsampling, exactly as published: within each of the 25 (K562, HepG2) class
   pairs, rows (file order) are permuted with seed 97 and, for each GC bin k (width 0.05),
   round(frac_k x floor(N / 25)) rows go to train, val and test (fallbacks when short), where
   frac_k is the share of all fragments in GC bin k.
5. Sequences of the chosen fragments only: reverse-complemented on the minus strand, SNP
   bases substituted (complemented on the minus strand), stored ragged and memory-mapped.

Batches are padded to their longest fragment with the PAD code (5, all-zero one-hot).
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from promoter_modelling.errors import InputError
from promoter_modelling.genome import Genome
from promoter_modelling.heads import GROUPED_MULTICLASS, REGRESSION, HeadSpec
from promoter_modelling.io_utils import load_npy, save_npy, save_table, save_text
from promoter_modelling.sequence import COMPLEMENT_CODE, PAD_CODE
from promoter_modelling.tasks.base import RawFile, TaskContext, TaskDataModule
from promoter_modelling.tasks.chromosome_split import SPLITS
from promoter_modelling.tasks.genome_input import GenomeInput
from promoter_modelling.tasks.storage import npy_writer, ragged_offsets, ragged_take

log = logging.getLogger(__name__)

GENOME_IDS = {
    "SuRE42_HG02601": "5bdaf1369764d2001958cc9d",
    "SuRE43_GM18983": "5bdaef10a28e68001ba2e11d",
    "SuRE44_HG01241": "5bdaf5889764d2001958d39f",
    "SuRE45_HG03464": "5bdaf3499764d2001a581441",
}
OSF_URL = "https://files.de-1.osf.io/v1/resources/h3m49/providers/osfstorage/{osf_id}/?zip="
GENOME_BUILD = "hg19"
CELLS = ("K562", "HepG2")
NUM_CLASSES = 5
GC_BIN_WIDTH = 0.05
NUM_GC_BINS = 20
SUBSAMPLE_SEED = 97
AMBIGUOUS = "[RYMKSWHBVDN]"
REQUIRED_COLUMNS = ["chr", "start", "end", "strand", "SNPrelpos", "SNPbaseInf"]
_BASE_CODES = {"A": 0, "C": 1, "G": 2, "T": 3}
FIELDS = ("chrom", "start", "length", "minus", "avg", "classes", "gc", "snp_indptr", "snp_pos", "snp_base")


# --- per-file preprocessing ----------------------------------------------------------------
def expression_columns(columns: list[str]) -> tuple[list[str], list[str]]:
    """(K562 columns, HepG2 columns): every SuRE* column, HepG2 when it contains HEPG2."""
    sure = [c for c in columns if c.startswith("SuRE")]
    hepg2 = sorted(c for c in sure if "HEPG2" in c)
    return sorted(set(sure) - set(hepg2)), hepg2


def expression_classes(avg: np.ndarray) -> np.ndarray:
    """5-class bins: min(ceil(avg / 10), 4) (0 = no expression, 4 = above 30)."""
    return np.minimum(np.ceil(np.asarray(avg, dtype=np.float64) / 10.0), NUM_CLASSES - 1).astype(np.int64)


def gc_bins(gc: np.ndarray) -> np.ndarray:
    """floor(GC / 0.05): 0..19, and 20 for an all-GC fragment (never sampled, as published)."""
    return np.floor(np.asarray(gc) / GC_BIN_WIDTH).astype(np.int64)


def parse_snps(relpos: pd.Series, bases: pd.Series, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Comma lists of SNP positions (relative to the fragment's genomic start, 0-based) and
    plus-strand bases -> CSR (indptr, positions, base codes)."""
    relpos = relpos.fillna("").astype(str).str.strip()
    bases = bases.fillna("").astype(str).str.strip()
    has = (relpos != "").to_numpy()
    n_pos = np.where(has, relpos.str.count(",").to_numpy() + 1, 0)
    n_base = np.where(bases.to_numpy() != "", bases.str.count(",").to_numpy() + 1, 0)
    bad = np.flatnonzero(n_pos != n_base)
    if bad.size:
        r = bad[0]
        raise InputError(f"{source}: row {r + 2}: SNPrelpos {relpos.iloc[r]!r} and SNPbaseInf {bases.iloc[r]!r} "
                         "list different numbers of SNPs")
    indptr = ragged_offsets(n_pos)
    if indptr[-1] == 0:
        return indptr, np.zeros(0, np.int64), np.zeros(0, np.uint8)
    pos = pd.to_numeric(relpos[has].str.split(",").explode(), errors="coerce").to_numpy(dtype=np.float64)
    letters = bases[has].str.split(",").explode().str.strip().to_numpy(dtype=object)
    codes = pd.Series(letters).map(_BASE_CODES).to_numpy(dtype=np.float64)
    wrong = np.flatnonzero(np.isnan(pos) | (pos < 0) | np.isnan(codes))
    if wrong.size:
        row = int(np.searchsorted(indptr, wrong[0], side="right") - 1)
        raise InputError(f"{source}: row {row + 2}: SNP {relpos.iloc[row]!r} / {bases.iloc[row]!r} is not a "
                         "non-negative position with a base A, C, G or T")
    return indptr, pos.astype(np.int64), codes.astype(np.uint8)


def read_fragments(path: str, genome: Genome) -> tuple[dict[str, np.ndarray], list[str]]:
    """One SuRE file -> per-fragment arrays (FIELDS) and the chromosome names of `chrom`."""
    try:
        header = list(pd.read_csv(path, sep="\t", nrows=0).columns)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot be read as a tab-separated SuRE file ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    k562, hepg2 = expression_columns(header)
    if missing or not k562 or not hepg2:
        what = ", ".join(missing) if missing else "SuRE* expression columns for both K562 and HepG2 (HEPG2)"
        raise InputError(f"{path}: missing column(s) {what}")
    df = pd.read_csv(path, sep="\t", usecols=REQUIRED_COLUMNS + k562 + hepg2,
                     dtype={"chr": str, "strand": str, "SNPrelpos": str, "SNPbaseInf": str})
    df = df[~df["SNPbaseInf"].str.contains(AMBIGUOUS, regex=True, na=False)].reset_index(drop=True)
    coords = np.stack([pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64) for c in ("start", "end")],
                      axis=1).reshape(-1, 2)
    strand = df["strand"].to_numpy()
    bad = np.flatnonzero(np.isnan(coords).any(axis=1) | (coords[:, 1] < coords[:, 0]) | ~np.isin(strand, ["+", "-"]))
    if bad.size:
        r = bad[0]
        raise InputError(f"{path}: fragment {r + 1} (after dropping ambiguous SNPs): start {df['start'].iloc[r]!r}, "
                         f"end {df['end'].iloc[r]!r}, strand {strand[r]!r} are not valid")
    avg = np.stack([df[k562].mean(axis=1).to_numpy(), df[hepg2].mean(axis=1).to_numpy()], axis=1)
    if np.isnan(avg).any():
        r = int(np.flatnonzero(np.isnan(avg).any(axis=1))[0])
        raise InputError(f"{path}: fragment {r + 1} has no expression value for one of the cells")
    start = coords[:, 0].astype(np.int64) - 1  # 0-based
    length = (coords[:, 1] - coords[:, 0] + 1).astype(np.int64)
    names, chrom = np.unique(df["chr"].to_numpy().astype(str), return_inverse=True)
    gc = np.zeros(len(df), dtype=np.float64)
    for i, name in enumerate(names):
        rows = np.flatnonzero(chrom == i)
        gc[rows] = genome.gc_counts(str(name), start[rows], start[rows] + length[rows]) / length[rows]
    indptr, pos, base = parse_snps(df["SNPrelpos"], df["SNPbaseInf"], path)
    classes = np.maximum(expression_classes(avg), -1).astype(np.int8)  # -1: outside the 5 classes
    arrays = {"chrom": chrom.astype(np.int32), "start": start, "length": length, "minus": strand == "-",
              "avg": avg.astype(np.float32), "classes": classes, "gc": gc, "snp_indptr": indptr, "snp_pos": pos,
              "snp_base": base}
    return arrays, [str(n) for n in names]


# --- subsampling ---------------------------------------------------------------------------
def gc_matched_subsample(combined: np.ndarray, gc_bin: np.ndarray, num_train: int, num_val: int, num_test: int,
                         seed: int = SUBSAMPLE_SEED) -> dict[str, np.ndarray]:
    """Row indices of train / val / test, GC-matched within each of the 25 class pairs.

    `combined` is 5 x K562 class + HepG2 class (-1 for rows outside the 25 pairs). The GC
    distribution to match is that of every row; rows of each pair are permuted with a fresh
    RandomState(seed), as published, so the membership equals the published one."""
    counts = np.bincount(gc_bin[(gc_bin >= 0) & (gc_bin < NUM_GC_BINS)], minlength=NUM_GC_BINS)[:NUM_GC_BINS]
    frac = counts / max(counts.sum(), 1)
    wanted = [int(np.floor(n / NUM_CLASSES ** 2)) for n in (num_train, num_val, num_test)]
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for pair in range(NUM_CLASSES ** 2):
        rows = np.flatnonzero(combined == pair)
        rows = rows[np.random.RandomState(seed).permutation(len(rows))]
        bins = gc_bin[rows]
        for k in range(NUM_GC_BINS):
            subset = rows[bins == k]
            n_train, n_val, n_test = (int(np.round(frac[k] * w)) for w in wanted)
            if n_train + n_val + n_test > len(subset):
                n_train = len(subset) - n_val - n_test
                if n_train < 0:
                    n_train = n_val = len(subset) // 3
                    n_test = len(subset) - n_train - n_val
            parts["train"].append(subset[:n_train])
            parts["val"].append(subset[n_train:n_train + n_val])
            parts["test"].append(subset[n_train + n_val:n_train + n_val + n_test])
    return {s: np.concatenate(parts[s]).astype(np.int64) for s in SPLITS}


# --- sequences -----------------------------------------------------------------------------
def substitute_snps(flat: np.ndarray, offsets: np.ndarray, minus: np.ndarray, snp_rows: np.ndarray,
                    snp_pos: np.ndarray, snp_base: np.ndarray, complement_minus: bool = True) -> np.ndarray:
    """Write SNP bases into concatenated fragment codes (in place) and return them.

    `snp_rows` is the fragment of each SNP. Positions are relative to the fragment's genomic
    start; a minus-strand fragment is stored reverse-complemented, so its SNP goes to index
    length - 1 - pos, as the complement of the plus-strand base (or, with
    `complement_minus=False`, uncomplemented as published)."""
    lengths = offsets[snp_rows + 1] - offsets[snp_rows]
    if np.any(snp_pos >= lengths):
        i = int(np.flatnonzero(snp_pos >= lengths)[0])
        raise InputError(f"SNP at relative position {snp_pos[i]} lies outside its {lengths[i]}-bp fragment")
    flip = minus[snp_rows]
    index = offsets[snp_rows] + np.where(flip, lengths - 1 - snp_pos, snp_pos)
    base = np.where(flip & complement_minus, COMPLEMENT_CODE[snp_base], snp_base)
    flat[index] = base
    return flat


class RaggedDataset(Dataset):
    """Variable-length uint8 sequences (flat codes + offsets) with fixed-size targets."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, y: np.ndarray) -> None:
        if len(offsets) != len(y) + 1:
            raise ValueError(f"{len(offsets) - 1} sequences but {len(y)} targets")
        self.flat, self.offsets, self.y = flat, np.asarray(offsets), y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return {"x": torch.from_numpy(np.array(self.flat[a:b])), "y": torch.from_numpy(np.array(self.y[i]))}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """The whole batch at once, x right-padded with the PAD code to its longest sequence
        (what pad_collate makes of the items one by one)."""
        rows = np.asarray(indices, dtype=np.int64)
        flat, lengths = ragged_take(self.offsets, rows)
        x = np.full((len(rows), int(lengths.max())), PAD_CODE, dtype=np.uint8)
        x[np.arange(x.shape[1])[None, :] < lengths[:, None]] = self.flat[flat]
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(np.asarray(self.y[rows]))}


def pad_collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items, right-padding x with the PAD code to the batch's longest sequence; a
    batch that RaggedDataset.__getitems__ already built passes through."""
    if isinstance(items, dict):
        return items
    lengths = torch.tensor([len(item["x"]) for item in items])
    x = torch.full((len(items), int(lengths.max())), PAD_CODE, dtype=torch.uint8)
    x[torch.arange(x.shape[1])[None, :] < lengths[:, None]] = torch.cat([item["x"] for item in items])
    return {"x": x, "y": torch.stack([item["y"] for item in items])}


# --- task ----------------------------------------------------------------------------------
class SuRE(GenomeInput, TaskDataModule):
    genome_build = GENOME_BUILD
    """One SuRE genome: 5-class expression bins per cell (grouped multiclass head) or the mean
    expression itself (`kind="regression"`). Head name `SuRE_<genome_id>`."""

    task_name = "SuRE"
    OPTIONS = ("genome_id", "kind", "num_train", "num_val", "num_test", "subsample_seed", "complement_minus_snps")

    @classmethod
    def run_options(cls, context: TaskContext) -> dict[str, object]:
        """Minus-strand SNP bases complemented unless --sure_minus_strand_snps published."""
        return {"complement_minus_snps": context.data.sure_minus_strand_snps == "complement"}
    raw_dirname = "SuRE_data"

    def __init__(self, data_dir: str, genome_id: str = "SuRE42_HG02601", kind: str = "classification",
                 batch_size: int = 96, num_workers: int = 0, seed: int = 0, shrink_test_set: bool = False,
                 num_train: int = 750_000, num_val: int = 75_000, num_test: int = 75_000,
                 subsample_seed: int = SUBSAMPLE_SEED, complement_minus_snps: bool = True) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, shrink_test_set)
        if genome_id not in GENOME_IDS:
            raise InputError(f"unknown SuRE genome {genome_id!r}; expected one of {', '.join(GENOME_IDS)}")
        if kind not in ("classification", "regression"):
            raise InputError(f"SuRE kind must be classification or regression, got {kind!r}")
        self.genome_id, self.kind = genome_id, kind
        self.cache_dirname = os.path.join("SuRE", genome_id)
        self.num_train, self.num_val, self.num_test = num_train, num_val, num_test
        self.subsample_seed = subsample_seed
        self.complement_minus_snps = complement_minus_snps
        name = f"SuRE_{genome_id}"
        if kind == "classification":
            self.head = HeadSpec(name, [f"{c}_bin" for c in CELLS], kind=GROUPED_MULTICLASS, num_classes=NUM_CLASSES)
        else:
            self.head = HeadSpec(name, [f"avg_{c}_exp" for c in CELLS], kind=REGRESSION)

    # raw inputs --------------------------------------------------------------------------
    @property
    def genome_dir(self) -> str:
        """Where the genome's zip is unzipped."""
        return os.path.join(self.raw_dir, self.genome_id)

    def raw_files(self) -> list[RawFile]:
        if os.path.isdir(self.genome_dir):
            return []
        return [RawFile(f"{self.genome_id}.zip", url=OSF_URL.format(osf_id=GENOME_IDS[self.genome_id]))]

    def download(self) -> None:
        super().download()
        if not os.path.isdir(self.genome_dir):
            unzip(os.path.join(self.raw_dir, f"{self.genome_id}.zip"), self.genome_dir)

    def data_files(self) -> list[str]:
        """Every regular file of the unzipped genome directory, sorted by relative path."""
        found = []
        for root, dirs, files in os.walk(self.genome_dir):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [os.path.join(root, f) for f in files if not f.startswith(".")]
        if not found:
            raise InputError(f"{self.genome_dir}: no SuRE data files; delete it (and {self.genome_id}.zip) "
                             "to download again")
        return sorted(found, key=lambda p: os.path.relpath(p, self.genome_dir))

    def input_paths(self) -> list[str]:
        return self.data_files() + [self.genome_path]

    def cache_params(self) -> dict:
        return {"num": [self.num_train, self.num_val, self.num_test], "seed": self.subsample_seed,
                "complement_minus_snps": self.complement_minus_snps}

    # cache ---------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self.cache_dir, name)

    def build_cache(self) -> None:
        genome = self.genome()
        files = self.data_files()
        part_dir = self._path("fragments")
        chrom_names, sizes, combined, gc_bin = [], [], [], []
        for i, path in enumerate(files):
            arrays, names = read_fragments(path, genome)
            for field in FIELDS:
                save_npy(os.path.join(part_dir, f"{i:04d}_{field}.npy"), arrays[field])
            chrom_names.append(names)
            sizes.append(len(arrays["start"]))
            classes = arrays["classes"].astype(np.int64)
            valid = ((classes >= 0) & (classes < NUM_CLASSES)).all(axis=1)
            combined.append(np.where(valid, classes[:, 0] * NUM_CLASSES + classes[:, 1], -1).astype(np.int8))
            gc_bin.append(gc_bins(arrays["gc"]).astype(np.int8))  # 2 bytes per fragment stay in memory
            log.info("%s: %d fragments", path, sizes[-1])
        file_offsets = ragged_offsets(np.array(sizes))
        chosen = gc_matched_subsample(np.concatenate(combined), np.concatenate(gc_bin),
                                      self.num_train, self.num_val, self.num_test, self.subsample_seed)
        for split, rows in chosen.items():
            self._write_split(split, rows, file_offsets, files, chrom_names, genome)
        save_text(json.dumps({"files": [os.path.relpath(f, self.genome_dir) for f in files],
                              "chromosomes": chrom_names}), self._path("fragments.json"))

    def _gather(self, rows: np.ndarray, file_offsets: np.ndarray, files: list[str],
                chrom_names: list[list[str]]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
        """Fields of global fragment rows (in order) and their SNPs (row, position, base)."""
        n = len(rows)
        classes = np.zeros((n, 2), dtype=np.int64)
        table = {"file": np.empty(n, dtype=object), "chr": np.empty(n, dtype=object),
                 "start0": np.zeros(n, np.int64), "length": np.zeros(n, np.int64), "minus": np.zeros(n, bool),
                 "avg_K562_exp": np.zeros(n, np.float32), "avg_HepG2_exp": np.zeros(n, np.float32),
                 "GC_content": np.zeros(n, np.float64)}
        snps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        file_of = np.searchsorted(file_offsets, rows, side="right") - 1
        for f in np.unique(file_of):
            where = np.flatnonzero(file_of == f)
            local = rows[where] - file_offsets[f]
            load = {field: load_npy(self._path(os.path.join("fragments", f"{f:04d}_{field}.npy"))) for field in FIELDS}
            avg = np.asarray(load["avg"][local])
            table["file"][where] = os.path.basename(files[f])
            table["chr"][where] = np.array(chrom_names[f], dtype=object)[load["chrom"][local]]
            for field, column in (("start", "start0"), ("length", "length"), ("minus", "minus"), ("gc", "GC_content")):
                table[column][where] = load[field][local]
            table["avg_K562_exp"][where], table["avg_HepG2_exp"][where] = avg[:, 0], avg[:, 1]
            classes[where] = load["classes"][local]
            snp_index, snp_count = ragged_take(np.asarray(load["snp_indptr"]), local)
            snps.append((np.repeat(where, snp_count), np.asarray(load["snp_pos"][snp_index]),
                         np.asarray(load["snp_base"][snp_index])))
        snp_rows, snp_pos, snp_base = (np.concatenate([np.zeros(0, dtype), *(s[i] for s in snps)]).astype(dtype)
                                       for i, dtype in enumerate((np.int64, np.int64, np.uint8)))
        table["K562_bin"], table["HepG2_bin"] = classes[:, 0], classes[:, 1]
        return pd.DataFrame(table), snp_rows, snp_pos, snp_base

    def _write_split(self, split: str, rows: np.ndarray, file_offsets: np.ndarray, files: list[str],
                     chrom_names: list[list[str]], genome: Genome) -> None:
        table, snp_rows, snp_pos, snp_base = self._gather(rows, file_offsets, files, chrom_names)
        lengths = table["length"].to_numpy(dtype=np.int64)
        offsets = ragged_offsets(lengths)
        minus = table["minus"].to_numpy(dtype=bool)
        outside = np.flatnonzero(snp_pos >= lengths[snp_rows])
        if outside.size:
            i = int(snp_rows[outside[0]])
            raise InputError(f"{table['file'].iloc[i]}: fragment {table['chr'].iloc[i]}:{table['start0'].iloc[i] + 1}: "
                             f"SNP at relative position {snp_pos[outside[0]]} lies outside its {lengths[i]}-bp fragment")
        with npy_writer(self._path(f"{split}_seqs.npy"), (int(offsets[-1]),), np.uint8) as flat:
            for block, codes in genome.iter_ragged(table["chr"].to_numpy(), table["start0"].to_numpy(), lengths, minus):
                flat[ragged_take(offsets, block)[0]] = codes
            substitute_snps(flat, offsets, minus, snp_rows, snp_pos, snp_base, self.complement_minus_snps)
        save_npy(self._path(f"{split}_offsets.npy"), offsets)
        exps = table[["avg_K562_exp", "avg_HepG2_exp"]].to_numpy(dtype=np.float32).reshape(-1, 2)
        save_npy(self._path(f"{split}_classes.npy"), table[["K562_bin", "HepG2_bin"]].to_numpy(np.int64).reshape(-1, 2))
        save_npy(self._path(f"{split}_exps.npy"), exps)
        out = table.drop(columns=["start0", "length", "minus"]).assign(
            start=table["start0"] + 1, end=table["start0"] + table["length"], strand=np.where(minus, "-", "+"),
            GC_content_bin=gc_bins(table["GC_content"].to_numpy(dtype=np.float64)))
        save_table(out, self._path(f"combined_bins_{split}_set.tsv"))

    def load_datasets(self) -> None:
        targets = "classes" if self.kind == "classification" else "exps"
        for split in SPLITS:
            dataset = RaggedDataset(load_npy(self._path(f"{split}_seqs.npy")),
                                    load_npy(self._path(f"{split}_offsets.npy")),
                                    load_npy(self._path(f"{split}_{targets}.npy")))
            setattr(self, f"{split}_dataset", dataset)

    @property
    def collate_fn(self) -> Callable:
        """Pads each batch to its longest fragment with the PAD code."""
        return pad_collate

    def split_table(self, split: str) -> pd.DataFrame:
        """The fragments of one split, in the order its loader serves them."""
        self.prepare()
        return pd.read_csv(self._path(f"combined_bins_{split}_set.tsv"), sep="\t")


def unzip(archive: str, directory: str) -> None:
    """Extract `archive` into `directory` (created only once extraction has succeeded)."""
    tmp = directory + ".partial"
    try:
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(tmp)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{archive}: not a readable zip archive ({exc}); delete it to download it again") from exc
    os.replace(tmp, directory)
