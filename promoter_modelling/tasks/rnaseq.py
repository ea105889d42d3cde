"""RNA-seq pretraining tasks: LL100, CCLE and Roadmap (the `RNASeq` group).

Each predicts a gene's expression in every cell line / tissue of one compendium from 250-bp
windows around its TSS. The three share one pipeline (RNASeqTask) and differ only in how the
raw expression table is read:

1. drop genes whose linear expression summed over cells is below `threshold x cells`;
2. log2(x + 1) (CCLE is already log2(TPM + 1));
3. inner-merge with the Ensembl protein-coding gene table (`<data>/common/ensembl_data.txt`);
4. keep genes on chromosomes 1-22, z-score every cell over the remaining genes (ddof 0);
5. extract three windows [-300,-50), [-100,150), [100,350) around the TSS from hg38;
6. split by chromosome (chromosome_split.py).

Training serves one window per item (genes x 3 items); validation and test serve the three
windows of a gene together, uint8 (3, 250), and the model averages its predictions.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import scipy.stats
import torch

from promoter_modelling import download
from promoter_modelling.errors import InputError
from promoter_modelling.genome import promoter_windows
from promoter_modelling.heads import REGRESSION, HeadSpec
from promoter_modelling.io_utils import load_npy, read_table, save_npy, save_table, save_text
from promoter_modelling.tasks.base import ArrayDataset, BatchedDataset, RawFile, TaskContext, TaskDataModule
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

ENSEMBL_FILE = "ensembl_data.txt"
ENSEMBL_GDRIVE_ID = "1ufpCW9Qb6r9tDohMIQTcuA-HdlcwjH1C"
GENE_ID, GENE_NAME, CHROMOSOME = "Gene stable ID", "Gene name", "Chromosome/scaffold name"
TSS, STRAND = "Transcription start site (TSS)", "Strand"
ENSEMBL_COLUMNS = [GENE_ID, GENE_NAME, CHROMOSOME, TSS, STRAND]
PROMOTER_WINDOWS = ((-300, -50), (-100, 150), (100, 350))

# Roadmap epigenome ids -> the cell-type names used as output names.
ROADMAP_NAMES = {
    "E000": "Universal_Human_Reference", "E003": "H1_Cell_Line",
    "E004": "H1_BMP4_Derived_Mesendoderm_Cultured_Cells", "E005": "H1_BMP4_Derived_Trophoblast_Cultured_Cells",
    "E006": "H1_Derived_Mesenchymal_Stem_Cells", "E007": "H1_Derived_Neuronal_Progenitor_Cultured_Cells",
    "E011": "hESC_Derived_CD184+_Endoderm_Cultured_Cells", "E012": "hESC_Derived_CD56+_Ectoderm_Cultured_Cells",
    "E013": "hESC_Derived_CD56+_Mesoderm_Cultured_Cells", "E016": "HUES64_Cell_Line", "E024": "4star",
    "E027": "Breast_Myoepithelial_Cells", "E028": "Breast_vHMEC", "E037": "CD4_Memory_Primary_Cells",
    "E038": "CD4_Naive_Primary_Cells", "E047": "CD8_Naive_Primary_Cells",
    "E050": "Mobilized_CD34_Primary_Cells_Female", "E053": "Neurosphere_Cultured_Cells_Cortex_Derived",
    "E054": "Neurosphere_Cultured_Cells_Ganglionic_Eminence_Derived",
    "E055": "Penis_Foreskin_Fibroblast_Primary_Cells_skin01", "E056": "Penis_Foreskin_Fibroblast_Primary_Cells_skin02",
    "E057": "Penis_Foreskin_Keratinocyte_Primary_Cells_skin02",
    "E058": "Penis_Foreskin_Keratinocyte_Primary_Cells_skin03",
    "E059": "Penis_Foreskin_Melanocyte_Primary_Cells_skin01", "E061": "Penis_Foreskin_Melanocyte_Primary_Cells_skin03",
    "E062": "Peripheral_Blood_Mononuclear_Primary_Cells", "E065": "Aorta", "E066": "Adult_Liver",
    "E070": "Brain_Germinal_Matrix", "E071": "Brain_Hippocampus_Middle", "E079": "Esophagus",
    "E082": "Fetal_Brain_Female", "E084": "Fetal_Intestine_Large", "E085": "Fetal_Intestine_Small",
    "E087": "Pancreatic_Islets", "E094": "Gastric", "E095": "Left_Ventricle", "E096": "Lung", "E097": "Ovary",
    "E098": "Pancreas", "E100": "Psoas_Muscle", "E104": "Right_Atrium", "E105": "Right_Ventricle",
    "E106": "Sigmoid_Colon", "E109": "Small_Intestine", "E112": "Thymus", "E113": "Spleen", "E114": "A549",
    "E116": "GM12878", "E117": "HELA", "E118": "HEPG2", "E119": "HMEC", "E120": "HSMM", "E122": "HUVEC",
    "E123": "K562", "E127": "NHEK", "E128": "NHLF",
}


# --- reading -------------------------------------------------------------------------------
def numeric_block(df: pd.DataFrame, columns: list, path: str) -> np.ndarray:
    """float64 (rows, columns) values; a non-numeric or missing value is reported by row and column."""
    block = df[columns]
    if not all(pd.api.types.is_numeric_dtype(t) for t in block.dtypes):
        block = pd.DataFrame({i: pd.to_numeric(block.iloc[:, i], errors="coerce") for i in range(block.shape[1])})
    values = block.to_numpy(dtype=np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        r, c = bad[0]
        raise InputError(f"{path}: row {r + 2}, column {columns[c]!r}: value {df[columns[c]].iloc[r]!r} "
                         "is not a finite number")
    return values


def read_ensembl(path: str) -> pd.DataFrame:
    """The BioMart gene table: one row per `Gene stable ID` (the first, as the published
    window lookup uses), chromosome names as strings, integer TSS and strand (1 / -1)."""
    df = read_table(path, "\t", ENSEMBL_COLUMNS, dtype={GENE_ID: str, GENE_NAME: str, CHROMOSOME: str})
    df = df[ENSEMBL_COLUMNS].drop_duplicates(GENE_ID, keep="first").reset_index(drop=True)
    numbers = numeric_block(df, [TSS, STRAND], path)
    df[TSS] = numbers[:, 0].astype(np.int64)
    df[STRAND] = numbers[:, 1].astype(np.int64)
    bad = np.flatnonzero(~np.isin(df[STRAND].to_numpy(), [1, -1]))
    if bad.size:
        raise InputError(f"{path}: gene {df[GENE_ID].iloc[bad[0]]}: strand {df[STRAND].iloc[bad[0]]} is not 1 or -1")
    return df


# --- preprocessing -------------------------------------------------------------------------
def expressed_genes(linear: np.ndarray, threshold: float) -> np.ndarray:
    """Keep mask: a gene stays if its expression summed over cells is >= threshold x cells."""
    return linear.sum(axis=1) >= threshold * linear.shape[1]


def build_gene_table(keys: np.ndarray, values: np.ndarray, cells: list[str], ensembl: pd.DataFrame, merge_on: str,
                     is_log: bool, threshold: float, zscore: bool, lists: dict[str, list[str]]) -> pd.DataFrame:
    """Filter, log-transform, merge with Ensembl, keep split chromosomes and z-score.

    Returns the Ensembl columns, `split` and one column per cell (the targets)."""
    linear = np.exp2(values) - 1.0 if is_log else values
    keep = expressed_genes(linear, threshold)
    logged = (values if is_log else np.log2(values + 1.0))[keep]
    left = pd.DataFrame({"_key": np.asarray(keys, dtype=object)[keep], "_row": np.arange(int(keep.sum()))})
    merged = left.merge(ensembl, left_on="_key", right_on=merge_on, how="inner")
    split = chromosome_split(merged[CHROMOSOME].to_numpy(), lists)
    merged = merged.assign(split=split)[split != ""].reset_index(drop=True)
    if merged.empty:
        raise InputError(f"no gene is left after filtering, merging with {ENSEMBL_FILE} on {merge_on!r} and "
                         "keeping the split chromosomes")
    targets = logged[merged["_row"].to_numpy()]
    if zscore:
        targets = scipy.stats.zscore(targets, axis=0, ddof=0)
    table = merged[ENSEMBL_COLUMNS + ["split"]].copy()
    return pd.concat([table, pd.DataFrame(targets, columns=list(cells))], axis=1)


# --- datasets ------------------------------------------------------------------------------
class WindowDataset(BatchedDataset):
    """Training items of a multi-window task: item i is window i % W of gene i // W."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y
        self.windows = x.shape[1]

    def __len__(self) -> int:
        return len(self.y) * self.windows

    def _batch(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        gene, window = np.divmod(index, self.windows)
        return {"x": torch.from_numpy(np.ascontiguousarray(self.x[gene, window])),
                "y": torch.from_numpy(np.ascontiguousarray(self.y[gene]))}


# --- task ----------------------------------------------------------------------------------
class RNASeqTask(GenomeInput, HeadFromData, TaskDataModule):
    """Shared pipeline of LL100, CCLE and Roadmap; subclasses read their expression table.

    The head (one regression output per cell) comes from the data: reading `head` prepares the task."""

    SHRINKS_TEST_SET = False

    head_name = ""
    merge_on = GENE_ID
    is_log = False
    OPTIONS = ("threshold", "zscore", "promoter_windows", "train_chromosomes", "val_chromosomes", "test_chromosomes",
               "cells")

    @classmethod
    def run_options(cls, context: TaskContext) -> dict[str, object]:
        """Published: expression z-scored per cell for every model."""
        return {"zscore": True}

    def __init__(self, data_dir: str, batch_size: int = 96, num_workers: int = 0, seed: int = 0,
                 shrink_test_set: bool = False, threshold: float = 1.0, zscore: bool = True,
                 promoter_windows: list[list[int]] | tuple = PROMOTER_WINDOWS,
                 train_chromosomes: list[str] | tuple = TRAIN_CHROMOSOMES,
                 val_chromosomes: list[str] | tuple = VAL_CHROMOSOMES,
                 test_chromosomes: list[str] | tuple = TEST_CHROMOSOMES,
                 cells: list[str | int] | None = None, duplicate_sum: str = "linear") -> None:
        # --shrink_test_set does not apply to these tasks (as published)
        super().__init__(data_dir, batch_size, num_workers, seed, shrink_test_set=False)
        if duplicate_sum not in ("linear", "log"):
            raise InputError(f"duplicate_sum must be 'linear' or 'log', got {duplicate_sum!r}")
        self.duplicate_sum = duplicate_sum  # CCLE only: how columns of one gene are summed
        self.threshold = float(threshold)
        self.zscore = zscore
        self.windows = [[int(w0), int(w1)] for w0, w1 in promoter_windows]
        self.num_windows = len(self.windows)
        self.lists = split_lists(train_chromosomes, val_chromosomes, test_chromosomes)
        self.cells = cells
        self.table: pd.DataFrame | None = None

    # raw inputs --------------------------------------------------------------------------
    @property
    def ensembl_path(self) -> str:
        return os.path.join(self.common_dir, ENSEMBL_FILE)

    def download(self) -> None:
        super().download()
        download.fetch(self.ensembl_path, gdrive_id=ENSEMBL_GDRIVE_ID)

    def input_paths(self) -> list[str]:
        return super().input_paths() + [self.ensembl_path, self.genome_path]

    def cache_params(self) -> dict:
        return {"threshold": self.threshold, "zscore": self.zscore, "windows": self.windows, "chromosomes": self.lists}

    def read_expression(self, ensembl: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(gene keys, values genes x cells on the file's scale, cell names). `ensembl` is the
        read_ensembl table, for a task that needs it to key its genes (read here if None)."""
        raise NotImplementedError

    # cache ---------------------------------------------------------------------------------
    @property
    def table_path(self) -> str:
        return os.path.join(self.cache_dir, f"{self.head_name}Dataset.tsv")

    def build_cache(self) -> None:
        ensembl = read_ensembl(self.ensembl_path)
        keys, values, cells = self.read_expression(ensembl)
        if len(set(cells)) != len(cells):
            duplicated = sorted({c for c in cells if cells.count(c) > 1})
            raise InputError(f"{self.head_name}: duplicated cell name(s) {', '.join(duplicated[:5])}")
        table = build_gene_table(keys, values, cells, ensembl, self.merge_on, self.is_log,
                                 self.threshold, self.zscore, self.lists)
        genome = self.genome()
        chroms = "chr" + table[CHROMOSOME].astype(str)
        seqs = promoter_windows(genome, chroms.to_numpy(), table[TSS].to_numpy(), table[STRAND].to_numpy(),
                                self.windows)
        for split in SPLITS:
            rows = (table["split"] == split).to_numpy()
            save_npy(os.path.join(self.cache_dir, f"{split}_seqs.npy"), seqs[rows])
            save_npy(os.path.join(self.cache_dir, f"{split}_targets.npy"),
                     table.loc[rows, cells].to_numpy(dtype=np.float32))
        save_table(table, self.table_path)
        save_text(json.dumps(list(cells)), os.path.join(self.cache_dir, "output_names.json"))

    def _selected(self, names: list[str]) -> list[int]:
        if self.cells is None:
            return list(range(len(names)))
        chosen = []
        for cell in self.cells:
            if isinstance(cell, (int, np.integer)):
                if not 0 <= cell < len(names):
                    raise InputError(f"{self.head_name}: cell index {cell} out of range (0..{len(names) - 1})")
                chosen.append(int(cell))
            elif cell in names:
                chosen.append(names.index(cell))
            else:
                raise InputError(f"{self.head_name}: unknown cell {cell!r}")
        return chosen

    def load_datasets(self) -> None:
        with open(os.path.join(self.cache_dir, "output_names.json"), encoding="utf-8") as handle:
            names = json.load(handle)
        chosen = self._selected(names)
        self.head = HeadSpec(self.head_name, [names[i] for i in chosen], kind=REGRESSION)
        for split in SPLITS:
            seqs = load_npy(os.path.join(self.cache_dir, f"{split}_seqs.npy"))
            targets = np.asarray(load_npy(os.path.join(self.cache_dir, f"{split}_targets.npy"))[:, chosen])
            dataset = WindowDataset(seqs, targets) if split == "train" else ArrayDataset(seqs, targets)
            setattr(self, f"{split}_dataset", dataset)

    def gene_table(self) -> pd.DataFrame:
        """The cached per-gene table (Ensembl columns, split, targets)."""
        self.prepare()
        if self.table is None:
            self.table = pd.read_csv(self.table_path, sep="\t", dtype={CHROMOSOME: str})
        return self.table


class LL100(RNASeqTask):
    """LL-100 leukemia/lymphoma cell lines: nf-core RSEM gene TPMs keyed by gene symbol."""

    task_name = "LL100"
    raw_dirname = "LL-100"
    head_name = "LL100"
    merge_on = GENE_NAME
    TPM_FILE = "rsem.merged.gene_tpm.tsv"

    def raw_files(self) -> list[RawFile]:
        return [RawFile(self.TPM_FILE, gdrive_id="12_WFTVbkm4gLp-qE1nPK-Jb8tSKX4giD")]

    def read_expression(self, ensembl: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        path = os.path.join(self.raw_dir, self.TPM_FILE)
        df = read_table(path, "\t", ["gene_id"], dtype={"gene_id": str})
        if df.shape[1] < 3:
            raise InputError(f"{path}: expected gene_id, transcript_id(s) and at least one cell column")
        cells = [str(c) for c in df.columns[2:]]
        return df["gene_id"].to_numpy(), numeric_block(df, list(df.columns[2:]), path), cells


class Roadmap(RNASeqTask):
    """Roadmap Epigenomics: RPKM of protein-coding genes in 57 epigenomes, keyed by Ensembl id."""

    task_name = "Roadmap"
    raw_dirname = "Roadmap"
    head_name = "Roadmap"
    RPKM_FILE = "57epigenomes.RPKM.pc"
    URL = "https://egg2.wustl.edu/roadmap/data/byDataType/rna/expression/57epigenomes.RPKM.pc.gz"

    def raw_files(self) -> list[RawFile]:
        return [RawFile(self.RPKM_FILE, url=self.URL, gunzip=True)]

    def read_expression(self, ensembl: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        path = os.path.join(self.raw_dir, self.RPKM_FILE)
        df = read_table(path, "\t", ["gene_id"], index_col=False, dtype={"gene_id": str})
        columns = list(df.columns[1:])
        cells = [ROADMAP_NAMES.get(str(c), str(c)) for c in columns]
        return df["gene_id"].to_numpy(), numeric_block(df, columns, path), cells


class CCLE(RNASeqTask):
    """DepMap CCLE: log2(TPM + 1) per model (rows) and gene "SYMBOL (Entrez)" (columns).

    Symbols are mapped to Ensembl ids through the gene table; columns mapping to the same id
    are summed as TPMs (`duplicate_sum="linear"`, default) or, as published, as log values
    (`duplicate_sum="log"`). Models are named by `StrippedCellLineName` from Model.csv."""

    task_name = "CCLE"
    raw_dirname = "CCLE"
    head_name = "CCLE"
    is_log = True
    TPM_FILE = "OmicsExpressionProteinCodingGenesTPMLogp1.csv"
    MODEL_FILE = "Model.csv"
    OPTIONS = (*RNASeqTask.OPTIONS, "duplicate_sum")

    @classmethod
    def run_options(cls, context: TaskContext) -> dict[str, object]:
        """Z-scored as every RNA-seq task; duplicated gene columns summed as --ccle_duplicate_sum says."""
        return {**super().run_options(context), "duplicate_sum": context.data.ccle_duplicate_sum}

    def raw_files(self) -> list[RawFile]:
        return [RawFile(self.TPM_FILE, gdrive_id="1pfmnO9dhrBC_vtxNE3SjbJxanyMbNUgc"),
                RawFile(self.MODEL_FILE, gdrive_id="1TvPA_kptSIM_3-eRZpF0TRBjg-hYldlN")]

    def cache_params(self) -> dict:
        return {**super().cache_params(), "duplicate_sum": self.duplicate_sum}

    def read_expression(self, ensembl: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        path = os.path.join(self.raw_dir, self.TPM_FILE)
        tpm = read_table(path, ",")
        model_path = os.path.join(self.raw_dir, self.MODEL_FILE)
        models = read_table(model_path, ",", ["ModelID", "StrippedCellLineName"], dtype=str)
        model_ids = tpm.iloc[:, 0].astype(str).to_numpy()
        repeated = pd.Index(model_ids).duplicated()
        if repeated.any():
            raise InputError(f"{path}: model {model_ids[repeated][0]} appears in more than one row")
        gene_columns = list(tpm.columns[1:])
        symbols = pd.Index(gene_columns).astype(str).str.split("(").str[0].str.strip()
        if ensembl is None:
            ensembl = read_ensembl(self.ensembl_path)
        name_to_id = ensembl.drop_duplicates(GENE_NAME, keep="last").set_index(GENE_NAME)[GENE_ID]
        known = symbols.isin(name_to_id.index)
        ids = name_to_id.reindex(symbols[known]).to_numpy()
        values = numeric_block(tpm, [c for c, k in zip(gene_columns, known) if k], path)
        summed, unique_ids = sum_duplicate_columns(values, ids, log_scale=self.duplicate_sum == "log")
        order = pd.Index(model_ids).get_indexer(models["ModelID"])
        present = order >= 0
        names = cell_line_names(models.loc[present, "StrippedCellLineName"], models.loc[present, "ModelID"])
        return unique_ids, summed[order[present]].T, names


def sum_duplicate_columns(values: np.ndarray, ids: np.ndarray, log_scale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sum the columns of log2(TPM + 1) `values` that share an id: as TPMs (then back to
    log2(TPM + 1)) or, with `log_scale`, as the log values themselves. Columns keep the order
    of their ids' first appearance."""
    codes, unique_ids = pd.factorize(pd.Index(ids))
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(unique_ids)))
    data = values if log_scale else np.exp2(values) - 1.0
    summed = np.add.reduceat(data[:, order], starts, axis=1) if len(order) else data
    return (summed if log_scale else np.log2(summed + 1.0)), np.asarray(unique_ids, dtype=object)


def cell_line_names(names: pd.Series, model_ids: pd.Series) -> list[str]:
    """Stripped cell line names; a missing or repeated name gets its ModelID appended."""
    names = names.fillna("").astype(str).to_numpy(dtype=object)
    ids = model_ids.astype(str).to_numpy(dtype=object)
    clash = pd.Series(names).duplicated(keep=False).to_numpy() | (names == "")
    names[clash] = np.where(names[clash] == "", ids[clash], names[clash] + "_" + ids[clash])
    return [str(n) for n in names]
