"""Malinois_MPRA: MPRA activity (log2 RNA/plasmid) of 200-bp elements in five cell lines
(Gosai et al. 2023, the ENCODE MPRA experiments behind the Malinois model).

Raw files, in `<data>/Malinois_MPRA/`: `file_info.csv` (one row per ENCODE count file: its cell,
experiment, element-references FASTA and element-quantifications TSV, found by the ENCODE portal
walk of `promoter_modelling.encode_portal`), the single-line FASTA `{reference}.fasta` (element
ID, sequence) and the MPRAmodel TSV `{quantification}.tsv` (`ID`, `log2FoldChange`).

Preprocessing (as published):
1. Per cell: the quantifications of its experiments joined to the reference sequences on `ID`;
   NaN and infinite values dropped; the value of an element is the mean over experiments.
2. The union over the five cells (a cell that did not measure an element has a missing target,
   masked out of loss and metrics) and its intersection (measured in all five).
3. Elements of exactly 200 bp; chromosome = the ID up to its first ":"; test chromosomes 7 and
   13, validation 19, 21 and X, everything else trains.
4. Subsampled variant (`Malinois_MPRA_subsampled_N`): the intersection only, N training elements
   drawn per chromosome in proportion to its share (published seed 97), test and validation the
   intersection's elements on their chromosomes.

Each variant keeps its cache in a folder of its own (`cache_full`, `cache_subsampled_N`).
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np
import pandas as pd

from promoter_modelling import sequence as seqlib
from promoter_modelling.errors import InputError
from promoter_modelling.heads import MASKED_REGRESSION, HeadSpec
from promoter_modelling.io_utils import load_npy, read_table, save_npy, save_table
from promoter_modelling.recipe import InputRecipe
from promoter_modelling.tasks.base import ArrayDataset, TaskContext, TaskDataModule

CELLS = ("K562", "HepG2", "GM12878", "SK-N-SH", "A549")
TARGET_COLUMNS = [f"{cell}_log2FoldChange" for cell in CELLS]
TEST_CHROMOSOMES = ("7", "13")
VAL_CHROMOSOMES = ("19", "21", "X")
ELEMENT_LENGTH = 200
SUBSAMPLE_SEED = 97
FILE_INFO = "file_info.csv"
FILE_INFO_COLUMNS = ["cell", "dataset_id", "element_references_id", "element_quantifications_id"]
SPLITS = ("train", "val", "test")
REPEAT_MODES = ("per_experiment", "published")
CACHE_FORMAT = 1


# --- raw files ---------------------------------------------------------------------------
def read_fasta(path: str) -> pd.DataFrame:
    """(ID, sequence) of a single-line FASTA: each `>` header line followed by exactly one
    sequence line (blank lines ignored). A record spread over several lines is refused, naming
    the file, the record and the line."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        text = data.decode("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a FASTA file ({exc})") from exc
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        data = text.encode("ascii")
    lines = text.split("\n")
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    starts = np.zeros(len(lines), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    keep = np.flatnonzero(lengths > 0)
    if keep.size == 0:
        raise InputError(f"{path}: empty FASTA file")
    is_header = np.frombuffer(data, dtype=np.uint8)[starts[keep]] == ord(">")
    wrong = np.flatnonzero(is_header != (np.arange(keep.size) % 2 == 0))
    if wrong.size or keep.size % 2:
        at = int(wrong[0]) if wrong.size else keep.size  # first line out of place (or the missing last one)
        header = at - 1 if at % 2 else at - 2
        record = lines[keep[max(header, 0)]][1:].strip()
        line = int(keep[min(at, keep.size - 1)]) + 1
        raise InputError(f"{path}: line {line}: record {record!r} is not one header line followed by one sequence "
                         "line (multi-line FASTA records are not supported; unwrap the file)")
    kept = np.array(lines, dtype=object)[keep]
    ids = pd.Series(kept[0::2]).str[1:].str.strip()
    return pd.DataFrame({"ID": ids.to_numpy(dtype=object), "sequence": kept[1::2]}).drop_duplicates()


MISSING_VALUES = ("nan", "", "na", "inf", "-inf", "+inf", "infinity", "-infinity", "none", "null")


def read_quantifications(path: str, cell: str) -> pd.DataFrame:
    """(ID, value) of an MPRAmodel element-quantification TSV: finite log2FoldChange values only."""
    wanted = ("ID", "log2FoldChange")
    table = read_table(path, "\t", wanted, usecols=lambda c: c in wanted, dtype={"ID": str})
    column = table["log2FoldChange"]
    values = pd.to_numeric(column, errors="coerce")
    if not pd.api.types.is_numeric_dtype(column):  # a cell is not a number: name the first that is not a missing value
        words = column.astype(str).str.strip().str.lower()
        bad = (values.isna() & column.notna() & ~words.isin(MISSING_VALUES)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{path}: row {row + 2}: log2FoldChange {column.iloc[row]!r} is not a number")
    values = values.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    return pd.DataFrame({"ID": table["ID"].to_numpy()[finite], cell: values[finite]})


def read_file_info(path: str) -> pd.DataFrame:
    """The count-file table of the portal walk, checked for its columns and cells."""
    info = read_table(path, ",", FILE_INFO_COLUMNS, dtype=str, keep_default_na=False)
    unknown = ~info["cell"].isin(CELLS)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputError(f"{path}: row {row + 2}: cell {info['cell'].iloc[row]!r} is not one of {', '.join(CELLS)}")
    empty = (info[FILE_INFO_COLUMNS[2:]] == "").any(axis=1).to_numpy()
    if empty.any():
        raise InputError(f"{path}: row {int(np.flatnonzero(empty)[0]) + 2}: no element references or "
                         "quantifications accession")
    return info


# --- preprocessing -----------------------------------------------------------------------
def cell_table(info: pd.DataFrame, cell: str, directory: str, repeats: str = "per_experiment",
               fasta_cache: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """(ID, sequence, value) of one cell: the mean over its experiments.

    `repeats="per_experiment"` averages each distinct quantification file's value of an element
    (a file listed by several count files counts once); `"published"` first drops repeated
    (ID, value) pairs across files, so equal values of two experiments count once."""
    rows = info[info["cell"] == cell]
    fasta_cache = {} if fasta_cache is None else fasta_cache
    refs = []
    for ref in dict.fromkeys(rows["element_references_id"]):
        if ref not in fasta_cache:
            fasta_cache[ref] = read_fasta(os.path.join(directory, f"{ref}.fasta"))
        refs.append(fasta_cache[ref])
    references = pd.concat(refs, ignore_index=True).drop_duplicates() if refs else pd.DataFrame(
        {"ID": [], "sequence": []})
    files = list(dict.fromkeys(rows["element_quantifications_id"]))
    quants = [read_quantifications(os.path.join(directory, f"{q}.tsv"), cell) for q in files]
    if repeats == "published":
        measured = pd.concat(quants, ignore_index=True).drop_duplicates() if quants else pd.DataFrame(
            {"ID": [], cell: []})
    else:
        measured = pd.concat(quants, ignore_index=True) if quants else pd.DataFrame({"ID": [], cell: []})
    merged = measured.merge(references, on="ID", how="inner")
    return merged.groupby(["ID", "sequence"], sort=True, as_index=False)[cell].mean()


def union_table(per_cell: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Outer join of the cells on (ID, sequence), sorted by (ID, sequence); columns
    `{cell}_log2FoldChange` in cell order, NaN where a cell did not measure an element."""
    long = pd.concat([frame.rename(columns={cell: "value"}).assign(cell=cell) for cell, frame in per_cell.items()],
                     ignore_index=True)
    wide = long.pivot_table(index=["ID", "sequence"], columns="cell", values="value", aggfunc="first", sort=True)
    wide = wide.reindex(columns=list(CELLS))
    wide.columns = TARGET_COLUMNS
    return wide.reset_index()


def add_split(table: pd.DataFrame, test: tuple[str, ...] = TEST_CHROMOSOMES,
              val: tuple[str, ...] = VAL_CHROMOSOMES) -> pd.DataFrame:
    """chr (ID up to the first ':'), length, 200-bp rows only, and is_val / is_test / is_train."""
    table = table.assign(chr=table["ID"].str.split(":", n=1).str[0], length=table["sequence"].str.len())
    table = table[table["length"] == ELEMENT_LENGTH].reset_index(drop=True)
    table["is_val"] = table["chr"].isin(val)
    table["is_test"] = table["chr"].isin(test)
    table["is_train"] = ~(table["is_val"] | table["is_test"])
    return table


def subsample_train(train: pd.DataFrame, n: int, seed: int = SUBSAMPLE_SEED) -> pd.DataFrame:
    """N training rows, per chromosome in proportion to its share, as published: floor(N *
    share) each, then +1 for uniformly drawn chromosomes until N, then the first k rows of each
    chromosome in one seeded shuffle of all rows (numpy's RandomState(seed), as the published
    global seed)."""
    if n < 1:
        raise InputError(f"--n_train_subsample must be at least 1, got {n}")
    if n > len(train):
        raise InputError(f"--n_train_subsample {n} is larger than the {len(train)} training elements measured in "
                         f"all five cells")
    rng = np.random.RandomState(seed)
    counts = train["chr"].value_counts()
    take = {c: int(np.floor(n * counts[c] / len(train))) for c in counts.index}
    while sum(take.values()) < n:
        take[rng.choice(counts.index)] += 1
    over = [c for c in counts.index if take[c] > counts[c]]
    if over:
        raise InputError(f"--n_train_subsample {n}: chromosome {over[0]} would need {take[over[0]]} training elements "
                         f"but has {counts[over[0]]}; choose a smaller N")
    shuffled = train.sample(frac=1, replace=False, random_state=rng)
    rank = shuffled.groupby("chr", sort=False).cumcount().to_numpy()
    limit = shuffled["chr"].map(take).to_numpy()
    chosen = shuffled[rank < limit]
    order = {c: i for i, c in enumerate(counts.index)}
    return chosen.iloc[np.argsort(chosen["chr"].map(order).to_numpy(), kind="stable")]


def build_final_table(directory: str, info: pd.DataFrame, n_train_subsample: int | None = None,
                      repeats: str = "per_experiment") -> pd.DataFrame:
    """Raw files -> the task's table (ID, sequence, five targets, chr, length, split flags).

    Full mode: the union of the cells. Subsampled: N training rows of the intersection plus the
    intersection's test and validation rows, in that order."""
    fasta_cache: dict[str, pd.DataFrame] = {}
    per_cell = {cell: cell_table(info, cell, directory, repeats, fasta_cache) for cell in CELLS}
    del fasta_cache
    union = union_table(per_cell)
    if n_train_subsample is None:
        if union.empty:
            raise InputError(f"{directory}: no element has a measurement and a reference sequence")
        return add_split(union)
    common = add_split(union[union[TARGET_COLUMNS].notna().all(axis=1)].reset_index(drop=True))
    train = subsample_train(common[common["is_train"]], n_train_subsample)
    return pd.concat([train, common[common["is_test"]], common[common["is_val"]]], ignore_index=True)


# --- task ---------------------------------------------------------------------------------
class MalinoisMPRA(TaskDataModule):
    """Masked regression of five cells' log2 activity (head `MalinoisMPRA`, or
    `MalinoisMPRA_subsampled_N`). Serves one-hot codes, DNABERT tokens or motif counts.

    `--shrink_test_set` cuts its val/test sets only where it is a pretraining task: where it is
    evaluated it keeps them whole (the published scripts never shrink it)."""

    task_name = "Malinois_MPRA"
    raw_dirname = "Malinois_MPRA"
    OPTIONS = ("n_train_subsample", "input_recipe", "repeats", "evaluated")
    INPUT_KINDS = ("onehot", "tokens", "motif_counts")
    reports_test_metrics = True
    count_files: ClassVar[tuple[str, ...] | None] = None  # None: the published 43 accessions

    @classmethod
    def run_options(cls, context: TaskContext) -> dict[str, object]:
        return {"input_recipe": context.recipe, "repeats": context.data.malinois_repeats,
                "evaluated": not context.pretraining}

    @classmethod
    def shrinks_test_set(cls, pretraining: bool) -> bool:
        return pretraining

    def __init__(self, data_dir: str, batch_size: int = 96, num_workers: int = 0, seed: int = 0,
                 shrink_test_set: bool = False, n_train_subsample: int | None = None,
                 input_recipe: InputRecipe | None = None, repeats: str = "per_experiment",
                 evaluated: bool = True) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, shrink_test_set=shrink_test_set and not evaluated)
        if repeats not in REPEAT_MODES:
            raise InputError(f"Malinois_MPRA repeats {repeats!r}: expected {' or '.join(REPEAT_MODES)}")
        if n_train_subsample is not None and n_train_subsample < 1:
            raise InputError(f"--n_train_subsample must be at least 1, got {n_train_subsample}")
        self.n_train_subsample = n_train_subsample
        self.input_recipe = input_recipe or InputRecipe()
        self.repeats = repeats
        variant = "full" if n_train_subsample is None else f"subsampled_{n_train_subsample}"
        self.cache_dirname = os.path.join(self.raw_dirname, f"cache_{variant}" + (
            "_published_repeats" if repeats == "published" else ""))
        head = "MalinoisMPRA" if n_train_subsample is None else f"MalinoisMPRA_subsampled_{n_train_subsample}"
        self.head = HeadSpec(head, list(CELLS), kind=MASKED_REGRESSION)
        self.table: pd.DataFrame | None = None

    # --- raw files: the portal walk, then the element files ---------------------------------
    @property
    def file_info_path(self) -> str:
        return os.path.join(self.raw_dir, FILE_INFO)

    def download(self) -> None:
        """Find the experiments' files through the ENCODE portal (once: the answers and
        file_info.csv are kept) and fetch every element file that is missing."""
        from promoter_modelling import encode_portal

        if not os.path.exists(self.file_info_path):
            accessions = list(self.count_files or encode_portal.MALINOIS_COUNT_FILES)
            info = encode_portal.resolve_experiment_files(accessions, self.raw_dir)
            save_table(info, self.file_info_path, sep=",")
        encode_portal.download_experiment_files(read_file_info(self.file_info_path), self.raw_dir)

    def input_paths(self) -> list[str]:
        if not os.path.exists(self.file_info_path):
            return [self.file_info_path]
        info = read_file_info(self.file_info_path)
        refs = [os.path.join(self.raw_dir, f"{r}.fasta") for r in dict.fromkeys(info["element_references_id"])]
        quants = [os.path.join(self.raw_dir, f"{q}.tsv") for q in dict.fromkeys(info["element_quantifications_id"])]
        return [self.file_info_path, *refs, *quants]

    def cache_params(self) -> dict:
        return {"n_train_subsample": self.n_train_subsample, "repeats": self.repeats, "format": CACHE_FORMAT,
                "length": ELEMENT_LENGTH, "test": list(TEST_CHROMOSOMES), "val": list(VAL_CHROMOSOMES)}

    # --- cache --------------------------------------------------------------------------------
    @property
    def table_path(self) -> str:
        return os.path.join(self.cache_dir, "final_dataset.tsv")

    def build_cache(self) -> None:
        info = read_file_info(self.file_info_path)
        table = build_final_table(self.raw_dir, info, self.n_train_subsample, self.repeats)
        codes = seqlib.encode(table["sequence"].tolist(), source=self.table_path)
        targets = table[TARGET_COLUMNS].to_numpy(dtype=np.float32)
        for split in SPLITS:
            rows = table[f"is_{split}"].to_numpy()
            save_npy(os.path.join(self.cache_dir, f"{split}_seqs.npy"), codes[rows])
            save_npy(os.path.join(self.cache_dir, f"{split}_targets.npy"), targets[rows])
        save_table(table, self.table_path)  # last: its presence means the arrays are complete

    def load_datasets(self) -> None:
        self.table = pd.read_csv(self.table_path, sep="\t", dtype={"ID": str, "chr": str})
        onehot = self.input_recipe.kind == "onehot"
        inputs = None if onehot else self.input_recipe.model_inputs(self.table["sequence"].tolist(), self.cache_dir)
        for split in SPLITS:
            targets = load_npy(os.path.join(self.cache_dir, f"{split}_targets.npy"))
            if onehot:
                x = load_npy(os.path.join(self.cache_dir, f"{split}_seqs.npy"))
            else:
                x = np.asarray(inputs[self.table[f"is_{split}"].to_numpy()])
            setattr(self, f"{split}_dataset", ArrayDataset(x, targets, ~np.isnan(targets)))

    def split_table(self, split: str) -> pd.DataFrame:
        """Rows of the task's table in one split, in the order its loader serves them."""
        self.prepare()
        return self.table[self.table[f"is_{split}"]].reset_index(drop=True)
