"""FluorescenceData: promoter activity (log2 P4/P7) in JURKAT, K562 and THP1 cells.

Raw inputs are `Raw_Promoter_Counts.csv` (read counts per cell, replicate and sorting bin)
and `final_list_of_all_promoter_sequences_fixed.tsv` (sequence, class, provenance). See
docs/data.md for the preprocessing; the split reproduces the published membership for a seed.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import scipy.stats

from promoter_modelling import sequence as seqlib
from promoter_modelling.errors import InputError
from promoter_modelling.heads import BINARY, REGRESSION, HeadSpec
from promoter_modelling.io_utils import load_npy, read_table, save_npy, save_table
from promoter_modelling.recipe import InputRecipe
from promoter_modelling.tasks.base import ArrayDataset, RawFile, TaskContext, TaskDataModule
from promoter_modelling.tasks.construct import codes_in_construct, in_construct

CELLS = ("JURKAT", "K562", "THP1")
REPLICATES = (1, 2)
COUNTS_FILE = "Raw_Promoter_Counts.csv"
SEQUENCES_FILE = "final_list_of_all_promoter_sequences_fixed.tsv"
COUNTS_GDRIVE_ID = "15p6GhDop5BsUPryZ6pfKgwJ2XEVHRAYq"
SEQUENCES_GDRIVE_ID = "1kTfsZvsCz7EWUhl-UZgK0B31LtxJH4qG"
PROMOTER_LENGTH = 250
NUM_GC_BINS = 20
DEFAULT_SPLIT_SEED = 97
SPLITS = ("train", "val", "test")


def count_columns(cell: str, replicate: int) -> tuple[str, str]:
    """Names of the P4 and P7 count columns of one cell and replicate (e.g. J1_P4, J1_P7)."""
    return f"{cell[0]}{replicate}_P4", f"{cell[0]}{replicate}_P7"


REQUIRED_COUNT_COLUMNS = [c for cell in CELLS for r in REPLICATES for c in count_columns(cell, r)]


MAX_READS = 1e12  # far above any sequencing run: a larger count is a corrupt or mis-scaled cell


def _shown(value: object, width: int = 60) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)  # counts: 12, not 12.0
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _same(a: object, b: object) -> bool:
    return bool(a == b) or bool(pd.isna(a) and pd.isna(b))


def drop_duplicate_rows(df: pd.DataFrame, path: str, report: bool = True) -> pd.DataFrame:
    """One row per sequence: exact repeats of a row are dropped (with a printed notice); two rows
    with the same sequence but different values are refused, naming both file rows. The index
    (file row - 2) of the rows kept is preserved, so later messages can name file rows."""
    shared = df["sequence"].duplicated(keep=False).to_numpy()
    if not shared.any():  # the usual case: only the sequence column is hashed
        return df
    candidates = df.loc[shared]
    repeated = candidates.index[candidates.duplicated(keep="first").to_numpy()]
    if len(repeated):
        first = df.loc[repeated[0]]
        earlier = candidates.loc[:repeated[0]].iloc[:-1]
        original = next(i for i, row in earlier.iterrows() if all(_same(row[c], first[c]) for c in df.columns))
        if report:
            print(f"[FluorescenceData] {path}: dropped {len(repeated)} exact duplicate row(s) "
                  f"(first: row {repeated[0] + 2}, a repeat of row {original + 2})")
        df, candidates = df.drop(index=repeated), candidates.drop(index=repeated)
    clash = candidates["sequence"].duplicated(keep=False).to_numpy()
    if clash.any():
        a = int(np.flatnonzero(clash)[0])
        b = int(np.flatnonzero(clash & (candidates["sequence"].to_numpy() == candidates["sequence"].iloc[a]))[1])
        first, second = candidates.iloc[a], candidates.iloc[b]
        column = next(c for c in df.columns if not _same(first[c], second[c]))
        raise InputError(f"{path}: rows {candidates.index[a] + 2} and {candidates.index[b] + 2} have the same sequence "
                         f"but different {column} ({_shown(first[column])} vs {_shown(second[column])}); keep one "
                         "of them")
    return df


def read_counts(path: str, report: bool = True) -> pd.DataFrame:
    """Read and validate Raw_Promoter_Counts.csv (comma-separated, header), one row per sequence.

    Every column but `sequence` must hold finite, non-negative counts of at most MAX_READS
    (fractional values are accepted: the preprocessing only adds 1 and divides). Exact duplicate
    rows are dropped (noticed when `report`); conflicting ones are refused."""
    df = read_table(path, ",", ["sequence", *REQUIRED_COUNT_COLUMNS])
    numeric = [c for c in df.columns if c != "sequence"]
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce").astype(np.float64).to_numpy()
        problems = (
            (np.isnan(values) | (values < 0), "is not a non-negative number"),
            (np.isinf(values), "is not a finite number"),
            (values > MAX_READS, f"is above {MAX_READS:.0e} reads (corrupt or not a read count?)"),
        )
        for bad, problem in problems:
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                text = str(pd.read_csv(path, usecols=[col], dtype=str)[col].iloc[row])  # as written; empty: nan
                raise InputError(f"{path}: row {row + 2}, column {col}: count {text!r} {problem}")
        df[col] = values
    return drop_duplicate_rows(df, path, report)


def read_sequence_table(path: str, report: bool = True) -> pd.DataFrame:
    """Read and validate the promoter sequence table (tab-separated, header), one row per
    sequence (exact duplicate rows dropped, conflicting ones refused)."""
    df = read_table(path, "\t", ["sequence", "class", "final_provenance"])
    unknown = ~df["class"].isin(["ClassI", "ClassII", "ClassIII"])
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputError(f"{path}: row {row + 2}: class {df['class'].iloc[row]!r} is not ClassI, ClassII or ClassIII")
    return drop_duplicate_rows(df, path, report)


def cell_specific_class(classes: pd.Series, provenance: pd.Series, source: str = "") -> np.ndarray:
    """Class label used to stratify the split, derived from `class` and `final_provenance`.

    ClassIII -> ClassIII_<type>; ClassII -> ClassII_<cell>_<type>_<total_num_motifs>;
    ClassI -> ClassI[_<cell>_<up|down>] from the first description segment (NK92, THP1, JURKAT).
    """
    fields = provenance.astype(str).str.split(" ~ ", expand=True, regex=False)
    for i in range(5):
        if i not in fields.columns:
            fields[i] = None

    def strip(col: int, prefix: str) -> pd.Series:
        return fields[col].fillna("").str.slice(len(prefix))

    out = np.full(len(classes), "ClassI", dtype=object)
    cls = classes.to_numpy()
    is3, is2, is1 = cls == "ClassIII", cls == "ClassII", cls == "ClassI"
    out[is3] = ("ClassIII_" + strip(1, "type="))[is3].to_numpy()
    class2 = "ClassII_" + strip(0, "cell=") + "_" + strip(1, "type=") + "_" + strip(2, "total_num_motifs=")
    out[is2] = class2[is2].to_numpy()
    if is1.any():
        description = strip(4, "description=").str.split(";", n=1).str[0].fillna("")
        found = np.zeros(len(cls), dtype=bool)
        for cell in ("NK92", "THP1", "JURKAT"):
            here = is1 & ~found & description.str.contains(cell, regex=False).to_numpy()
            direction = np.where(description.str.contains("upregulated", regex=False).to_numpy(), "up", "down")
            out[here] = "ClassI_" + cell + "_" + direction[here]
            found |= here
        fold = pd.to_numeric(strip(2, "log2FoldChange="), errors="coerce").to_numpy()
        up = np.char.endswith(out.astype(str), "_up")
        down = np.char.endswith(out.astype(str), "_down")
        wrong = (up & ~(fold > 0)) | (down & ~(fold < 0))
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise InputError(f"{source}: row {classes.index[row] + 2}: log2FoldChange {fold[row]} disagrees with "
                             f"description {description.iloc[row]!r}")
    return out


def normalise_counts(counts: pd.DataFrame, min_reads: int) -> pd.DataFrame:
    """Keep rows whose every `*_sum` column (except cum_sum) is >= min_reads; add a pseudocount
    of 1 to every count column and divide by the column total."""
    sum_cols = [c for c in counts.columns if c.endswith("_sum") and c != "cum_sum"]
    keep = np.ones(len(counts), dtype=bool)
    for col in sum_cols:
        keep &= counts[col].to_numpy() >= min_reads
    kept = counts.loc[keep].reset_index(drop=True)
    count_cols = [c for c in kept.columns if not (c.endswith("_sum") or c == "sequence")]
    values = kept[count_cols].to_numpy(dtype=np.float64) + 1.0
    kept[count_cols] = values / values.sum(axis=0, keepdims=True)
    return kept


def log_ratio_targets(normalised: pd.DataFrame, predict_de: bool = False) -> pd.DataFrame:
    """Per cell: mean over replicates of log2(P4/P7); with predict_de, of log2(ratio / mean
    ratio of the other two cells). Also returns per-replicate columns `<cell>_rep<r>`."""
    out = pd.DataFrame({"sequence": normalised["sequence"].to_numpy()})
    ratios = {(cell, r): normalised[count_columns(cell, r)[0]].to_numpy() / normalised[count_columns(cell, r)[1]].to_numpy()
              for cell in CELLS for r in REPLICATES}
    for cell in CELLS:
        reps = []
        for r in REPLICATES:
            ratio = ratios[(cell, r)]
            if predict_de:
                ratio = ratio / np.mean([ratios[(other, r)] for other in CELLS if other != cell], axis=0)
            reps.append(np.log2(ratio))
            out[f"{cell}_rep{r}"] = reps[-1]
        out[cell] = np.mean(reps, axis=0)
    return out


def gc_bins(gc: np.ndarray) -> np.ndarray:
    """GC bins of width 0.05 (0..19); GC = 1.0 joins the last bin instead of breaking the split."""
    return np.minimum(np.floor(gc / 0.05).astype(int), NUM_GC_BINS - 1)


def stratified_split(strata: np.ndarray, bins: np.ndarray, seed: int | None, train_fraction: float = 0.7,
                     val_fraction: float = 0.1) -> np.ndarray:
    """Split label per row ("train"/"val"/"test"), stratified by class x GC bin.

    For each class (sorted) and GC bin 0..19 the rows are permuted with a RandomState seeded
    once with `seed` (97 when None); the first ceil(0.7 n) go to train, the next floor(0.1 n) to
    val and the rest to test: the published procedure, so memberships match for a seed.
    """
    rng = np.random.RandomState(DEFAULT_SPLIT_SEED if seed is None else seed)
    labels = np.empty(len(strata), dtype=object)
    for cls in sorted(set(strata.tolist())):
        in_class = strata == cls
        for b in range(NUM_GC_BINS):
            rows = np.flatnonzero(in_class & (bins == b))
            shuffled = rows[rng.permutation(rows.shape[0])]
            n_train = int(np.ceil(rows.shape[0] * train_fraction))
            n_val = int(np.floor(rows.shape[0] * val_fraction))
            labels[shuffled[:n_train]] = "train"
            labels[shuffled[n_train:n_train + n_val]] = "val"
            labels[shuffled[n_train + n_val:]] = "test"
    return labels


def report_unmatched(counts: pd.DataFrame, targets: pd.DataFrame, table: pd.DataFrame, min_reads: int,
                     kept: int) -> None:
    """Print one line: rows of each raw file dropped for having no match in the other. Both
    tables hold one row per sequence, so the merge size gives the matches."""
    counted = set(counts["sequence"].tolist())
    without_counts = sum(1 for seq in table["sequence"].tolist() if seq not in counted)
    print(f"[FluorescenceData] merged {kept} promoters; dropped {len(targets) - kept} of {len(targets)} {COUNTS_FILE} "
          f"rows passing min_reads={min_reads} (no row in {SEQUENCES_FILE}) and {without_counts} of {len(table)} "
          f"{SEQUENCES_FILE} rows (no row in {COUNTS_FILE}); {len(table) - kept - without_counts} more were below "
          "min_reads")


def build_merged(counts_path: str, sequences_path: str, min_reads: int = 5, zscore: bool = False,
                 predict_de: bool = False, split_seed: int | None = None, train_fraction: float = 0.7,
                 val_fraction: float = 0.1, report: bool = True) -> pd.DataFrame:
    """Raw files -> one table: targets, class, GC content and split flags (`merged.tsv`), one row
    per sequence. With `report`, duplicate rows dropped and rows without a match in the other file
    are printed (one line each)."""
    counts = read_counts(counts_path, report)
    table = read_sequence_table(sequences_path, report)
    targets = log_ratio_targets(normalise_counts(counts, min_reads), predict_de)
    if zscore:
        for cell in CELLS:
            targets[cell] = scipy.stats.zscore(targets[cell].to_numpy())
    table = table.assign(cell_specific_class=cell_specific_class(table["class"], table["final_provenance"], sequences_path),
                         _file_row=table.index + 2)  # header is row 1; the index survives deduplication
    merged = targets.merge(table, on="sequence", how="inner")
    if report:
        report_unmatched(counts, targets, table, min_reads, len(merged))
    if merged.empty:
        raise InputError(f"{counts_path} and {sequences_path}: no sequence appears in both files after filtering")
    codes = seqlib.encode(merged["sequence"].tolist(), source=sequences_path, rows=merged.pop("_file_row").to_numpy())
    if codes.shape[1] != PROMOTER_LENGTH:
        raise InputError(f"{sequences_path}: promoters are {codes.shape[1]} bp, expected {PROMOTER_LENGTH}")
    merged["GC_content"] = seqlib.gc_content(codes)
    merged["GC_content_bin"] = gc_bins(merged["GC_content"].to_numpy())
    split = stratified_split(merged["cell_specific_class"].to_numpy(), merged["GC_content_bin"].to_numpy(),
                             split_seed, train_fraction, val_fraction)
    for name in SPLITS:
        merged[f"is_{name}"] = split == name
    return merged


class FluorescenceData(TaskDataModule):
    """Regression of log2(P4/P7) per cell (head `Fluorescence`, outputs JURKAT, K562, THP1)."""

    task_name = "FluorescenceData"
    raw_dirname = "FluorescenceData"
    head_name = "Fluorescence"
    head_kind = REGRESSION
    cache_prefix = "FluorescenceData"
    OPTIONS = ("split_seed", "min_reads", "zscore", "predict_de", "cells", "train_fraction", "val_fraction",
               "input_recipe", "use_construct")
    INPUT_KINDS = ("onehot", "tokens", "motif_counts")
    reports_test_metrics = True
    SHRINKS_TEST_SET = False

    @classmethod
    def run_options(cls, context: TaskContext) -> dict[str, object]:
        """Published: targets z-scored for token (DNABERT) and motif-count models only."""
        options: dict[str, object] = {"input_recipe": context.recipe, "split_seed": context.split_seed}
        if "zscore" in cls.OPTIONS:
            options["zscore"] = context.recipe.kind != "onehot"
        if context.simple_regression:
            options["use_construct"] = True  # published: simple regression reads the promoter in its plasmid
        return options

    def __init__(self, data_dir: str, batch_size: int = 96, num_workers: int = 0, seed: int = 0,
                 shrink_test_set: bool = False, split_seed: int | None = None, min_reads: int = 5,
                 zscore: bool = False, predict_de: bool = False, cells: list[str] | None = None,
                 train_fraction: float = 0.7, val_fraction: float = 0.1,
                 input_recipe: InputRecipe | None = None, use_construct: bool = False) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, shrink_test_set=False)
        self.use_construct = use_construct  # inputs: the promoter inside its 1,177-bp plasmid context
        self.input_recipe = input_recipe or InputRecipe()
        self.split_seed = split_seed
        self.min_reads = min_reads
        self.zscore = zscore and self.head_kind == REGRESSION  # labels are always un-z-scored
        self.predict_de = predict_de
        self.cells = list(cells or CELLS)
        unknown = [c for c in self.cells if c not in CELLS]
        if unknown:
            raise InputError(f"unknown cell(s) {unknown}; expected a subset of {list(CELLS)}")
        self.train_fraction = train_fraction
        self.val_fraction = val_fraction
        suffix = "_DE" if predict_de else ""
        suffix += "_zscore" if self.zscore else ""
        suffix += f"_seed_{split_seed}" if split_seed is not None else ""
        self.cache_dirname = f"{self.cache_prefix}{suffix}"
        self.head = HeadSpec(self.head_name, self.cells, kind=self.head_kind)
        self.merged: pd.DataFrame | None = None
        self.full_dataset: ArrayDataset | None = None

    def raw_files(self) -> list[RawFile]:
        return [RawFile(COUNTS_FILE, gdrive_id=COUNTS_GDRIVE_ID), RawFile(SEQUENCES_FILE, gdrive_id=SEQUENCES_GDRIVE_ID)]

    def cache_params(self) -> dict:
        return {"min_reads": self.min_reads, "zscore": self.zscore, "predict_de": self.predict_de,
                "split_seed": self.split_seed, "train_fraction": self.train_fraction,
                "val_fraction": self.val_fraction, "kind": self.head_kind,
                # format 2: duplicate rows dropped, one row per sequence (caches of format 1 are rebuilt)
                "table_format": 2}

    @property
    def merged_path(self) -> str:
        return os.path.join(self.cache_dir, "merged_DE.tsv" if self.predict_de else "merged.tsv")

    def build_cache(self) -> None:
        merged = self.make_table()
        save_table(merged, self.merged_path)
        codes = seqlib.encode(merged["sequence"].tolist())
        save_npy(os.path.join(self.cache_dir, "full_seqs.npy"), codes)
        for split in SPLITS:
            save_npy(os.path.join(self.cache_dir, f"{split}_seqs.npy"), codes[merged[f"is_{split}"].to_numpy()])

    def make_table(self) -> pd.DataFrame:
        return build_merged(os.path.join(self.raw_dir, COUNTS_FILE), os.path.join(self.raw_dir, SEQUENCES_FILE),
                            self.min_reads, self.zscore, self.predict_de, self.split_seed,
                            self.train_fraction, self.val_fraction)

    def targets(self, table: pd.DataFrame) -> np.ndarray:
        return table[self.cells].to_numpy(dtype=np.float32)

    def load_datasets(self) -> None:
        self.merged = pd.read_csv(self.merged_path, sep="\t")
        full = load_npy(os.path.join(self.cache_dir, "full_seqs.npy"))
        onehot = self.input_recipe.kind == "onehot"
        if not onehot:
            # Model-specific inputs (k-mer tokens, motif counts) are derived from the sequences
            # and cached beside the codes; see recipe.py.
            sequences = self.merged["sequence"].tolist()
            full = self.input_recipe.model_inputs(in_construct(sequences) if self.use_construct else sequences,
                                                  self.cache_dir)
        elif self.use_construct:
            full = codes_in_construct(full)
        self.full_dataset = ArrayDataset(full, self.targets(self.merged))
        for split in SPLITS:
            flags = self.merged[f"is_{split}"].to_numpy()
            if onehot and not self.use_construct:
                x = load_npy(os.path.join(self.cache_dir, f"{split}_seqs.npy"))
            else:
                x = np.asarray(full[flags])
            setattr(self, f"{split}_dataset", ArrayDataset(x, self.targets(self.merged[flags])))

    def split_table(self, split: str) -> pd.DataFrame:
        """Rows of `merged` in one split, in the order the split's loader serves them."""
        self.prepare()
        return self.merged[self.merged[f"is_{split}"]].reset_index(drop=True)


class FluorescenceClassificationData(FluorescenceData):
    """Binary task: is the promoter above the median log ratio of its cell (head
    `Fluorescence_classification`). The median is taken over every row that passed the read
    filter, before the merge with the sequence table, as published."""

    task_name = "FluorescenceData_classification"
    head_name = "Fluorescence_classification"
    head_kind = BINARY

    cache_prefix = "FluorescenceData_classification"
    OPTIONS = tuple(o for o in FluorescenceData.OPTIONS if o != "zscore")  # labels are never z-scored

    def make_table(self) -> pd.DataFrame:
        counts = read_counts(os.path.join(self.raw_dir, COUNTS_FILE), report=False)  # build_merged reports
        targets = log_ratio_targets(normalise_counts(counts, self.min_reads), self.predict_de)
        medians = {cell: float(np.median(targets[cell].to_numpy())) for cell in CELLS}
        merged = super().make_table()
        for cell in CELLS:
            merged[f"numerical_{cell}"] = merged[cell]
            merged[cell] = (merged[cell] > medians[cell]).astype(np.float32)
        return merged
