"""lentiMPRA: 200-nt element activity (log2 RNA/DNA) in K562, HepG2 and WTC11 (Agarwal et al.,
the MPRAnn study), a pretraining / joint task with three masked regression outputs.

Raw files in `<data>/lentiMPRA/`, four OpenDocument spreadsheets from Google Drive:

- `large_scale_positions.ods`, sheets "{cell} large-scale": name, chr.hg38 and the 230-nt
  sequence (15-nt 5' adaptor, 200-nt element, 15-nt 3' adaptor) of each cell's library;
- `large_scale_exps.ods`, sheets "{cell}_summary_data" (name, mean) and "{cell}_forward_reverse"
  (name, reverse [log2(rna/dna)]);
- `designed_sequences.ods`, sheet "joint library" (name, chr.hg38, 230-nt sequence);
- `designed_sequences_exps.ods`, sheet "all_cell_types_summary" (name, {cell} [log2(rna/dna)]).

Preprocessing (as published): per cell, a forward row per element (summary `mean`, the other
cells missing) and a reverse row per element of the forward/reverse sheet (the reverse
complement of the element with its `reverse` value; WTC11 names there get "_F" appended to match
the positions sheet); then one forward row per joint-library element with all three cells.
Adaptors are cut off (sequence[15:-15]). WTC11 and joint-library chromosomes are bare ("1", "X")
and get "chr" prefixed; an empty chromosome becomes "undefined", a contig name with "_"
"specialchr". No deduplication, no normalisation: targets are the published values, NaN (and
mask False) where a cell was not measured.

Split: by chromosome (published lists; "specialchr" in train). Rows on "undefined" chromosomes
are split at random 70/20/10 (ceil, ceil, rest) with seed 97: by sequence group (default
`undefined_split="grouped"`: an element, its reverse complement and identical sequences stay
together, and follow the split of a copy that has a chromosome) or row by row as published
(`"published"`, which lets reverse complements leak across splits).

Cache: `final_dataset.tsv` (published columns plus is_train/is_test/is_val) and per split
`{split}_seqs.npy` (uint8 codes, N x 200), `{split}_targets.npy` (float32, N x 3, NaN where
missing) and `{split}_mask.npy` (bool, N x 3).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from promoter_modelling import sequence as seqlib
from promoter_modelling.errors import InputError
from promoter_modelling.heads import MASKED_REGRESSION, HeadSpec
from promoter_modelling.io_utils import load_npy, save_npy, save_table
from promoter_modelling.tasks.base import ArrayDataset, RawFile, TaskContext, TaskDataModule

CELLS = ("K562", "HepG2", "WTC11")
POSITIONS_FILE = "large_scale_positions.ods"
EXPS_FILE = "large_scale_exps.ods"
DESIGNED_FILE = "designed_sequences.ods"
DESIGNED_EXPS_FILE = "designed_sequences_exps.ods"
GDRIVE_IDS = {
    POSITIONS_FILE: "1ME80jtw2QGt4nUo_pfNVktyt-zv9EYvg",
    EXPS_FILE: "19YQGNWg8zHxRcF92cb_wYhkZUCxrjsMS",
    DESIGNED_FILE: "1LPeGz_-cAidxgPsuHAQDny1Ie-FDYZ_4",
    DESIGNED_EXPS_FILE: "1QJIU5dWe8PQnPyGeXiqJnYGDkZPp1j8q",
}
SEQUENCE_COLUMN = "230nt sequence (15nt 5' adaptor - 200nt element - 15nt 3' adaptor)"
CHROMOSOME_COLUMN = "chr.hg38"
REVERSE_COLUMN = "reverse [log2(rna/dna)]"
JOINT_SHEET = "joint library"
JOINT_EXPS_SHEET = "all_cell_types_summary"
ADAPTOR_LENGTH = 15
RAW_LENGTH = 230
ELEMENT_LENGTH = RAW_LENGTH - 2 * ADAPTOR_LENGTH

TRAIN_CHROMOSOMES = ("1", "3", "5", "6", "7", "8", "11", "12", "14", "15", "16", "18", "19", "22", "X", "Y",
                     "specialchr")
TEST_CHROMOSOMES = ("2", "9", "10", "13", "20", "21")
VAL_CHROMOSOMES = ("4", "17")
CHROMOSOME_LISTS = {"train": TRAIN_CHROMOSOMES, "test": TEST_CHROMOSOMES, "val": VAL_CHROMOSOMES}
SPLITS = ("train", "val", "test")
UNDEFINED = "undefined"
SPECIAL = "specialchr"
UNDEFINED_SPLIT_SEED = 97  # the published np.random.seed(97)
UNDEFINED_FRACTIONS = (0.7, 0.2)  # train, test (ceil each); val gets the rest
UNDEFINED_SPLIT_CHOICES = ("grouped", "published")
TABLE_COLUMNS = ["sequence", "chromosome", "orientation", *CELLS]


def positions_sheet(cell: str) -> str:
    return f"{cell} large-scale"


def summary_sheet(cell: str) -> str:
    return f"{cell}_summary_data"


def forward_reverse_sheet(cell: str) -> str:
    return f"{cell}_forward_reverse"


def joint_target_column(cell: str) -> str:
    return f"{cell} [log2(rna/dna)]"


# --- reading and checking the spreadsheets ------------------------------------------------------
def read_sheets(path: str, wanted: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    """The `wanted` {sheet: columns} of one OpenDocument spreadsheet (header = spreadsheet row 1),
    each with `_row`, the spreadsheet row number of each data row. Only these sheets are parsed.
    A missing file, sheet or column is refused naming file, sheet and column."""
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    try:
        workbook = pd.ExcelFile(path, engine="odf")
    except Exception as exc:  # odfpy raises zipfile, XML and key errors on a damaged file
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: cannot be read as an OpenDocument spreadsheet ({detail}); delete it to "
                         "download it again") from exc
    sheets = {}
    with workbook:
        names = [str(s) for s in workbook.sheet_names]
        for sheet, columns in wanted.items():
            if sheet not in names:
                raise InputError(f"{path}: no sheet {sheet!r} (sheets: {', '.join(map(repr, names))})")
            df = pd.read_excel(workbook, sheet_name=sheet)
            df.columns = [str(c) for c in df.columns]
            missing = [c for c in columns if c not in df.columns]
            if missing:
                found = ", ".join(map(repr, df.columns[:12])) + (", ..." if len(df.columns) > 12 else "")
                raise InputError(f"{path}: sheet {sheet!r} has no column {missing[0]!r} (columns: {found})")
            out = df[columns].copy()
            out["_row"] = np.arange(len(df), dtype=np.int64) + 2
            sheets[sheet] = out
    return sheets


def element_names(values: pd.Series, suffix: str = "") -> pd.Series:
    """Element names as merge keys (object dtype, so text and numeric names compare by value),
    with `suffix` appended to each present name."""
    values = values.astype(object)
    if suffix:
        values = values.where(values.isna(), values.astype(str) + suffix)
    return values


def _value_text(value: object) -> str:
    """Text of a cell value: integral numbers without ".0" (1.0 -> "1"), strings stripped."""
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def numeric_column(df: pd.DataFrame, column: str, path: str, sheet: str) -> np.ndarray:
    """float64 values of a target column; an empty cell is NaN (not measured). Text that is not
    a number, or an infinite value, is refused naming file, sheet, row and column."""
    raw = df[column]
    values = pd.to_numeric(raw.astype(object), errors="coerce").astype(np.float64).to_numpy()
    bad = (np.isnan(values) & raw.notna().to_numpy()) | np.isinf(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{path}: sheet {sheet!r}, row {int(df['_row'].iloc[i])}, column {column!r}: "
                         f"{_shown(raw.iloc[i])} is not a finite number")
    return values


def _shown(value: object, width: int = 40) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def element_sequences(df: pd.DataFrame, path: str, sheet: str) -> pd.Series:
    """The 200-nt elements (adaptors cut off, upper case) of a sheet's 230-nt column, after
    checking every row: a missing value, a length other than 230 or a character other than
    ACGTN is refused naming file, sheet and row."""
    raw = df[SEQUENCE_COLUMN].astype(object)
    text = raw.where(raw.notna(), "").astype(str)
    good = text.str.fullmatch(f"[ACGTNacgtn]{{{RAW_LENGTH}}}").to_numpy(dtype=bool)
    if not good.all():
        i = int(np.flatnonzero(~good)[0])
        value, where = raw.iloc[i], f"{path}: sheet {sheet!r}, row {int(df['_row'].iloc[i])}"
        if not isinstance(value, str):
            problem = "is empty" if pd.isna(value) else f"is not a DNA sequence ({_shown(value)})"
        elif len(value) != RAW_LENGTH:
            problem = (f"has {len(value)} characters, expected {RAW_LENGTH} (15-nt 5' adaptor, 200-nt element, "
                       "15-nt 3' adaptor)")
        else:
            position = next(p for p, c in enumerate(value) if c.upper() not in "ACGTN")
            problem = (f"has invalid character {value[position]!r} at position {position + 1} (counting from 1; "
                       "allowed: A, C, G, T, N)")
        raise InputError(f"{where}: the 230-nt sequence {problem}")
    return text.str.slice(ADAPTOR_LENGTH, RAW_LENGTH - ADAPTOR_LENGTH).str.upper()


def reverse_complements(sequences: pd.Series) -> pd.Series:
    """Reverse complement of every sequence (upper-case ACGTN)."""
    table = str.maketrans("ACGTN", "TGCAN")
    return sequences.astype(object).str.translate(table).str[::-1]


def chromosome_names(values: pd.Series, add_prefix: bool) -> pd.Series:
    """Chromosome column as text: numbers without ".0", missing kept missing. With `add_prefix`
    (WTC11 and joint library, which name chromosomes "1", "X") "chr" is prepended, unless the
    value already starts with "chr"."""
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    texts = [_value_text(u) for u in uniques]
    if add_prefix:
        texts = [t if t.startswith("chr") or not t else "chr" + t for t in texts]
    mapped = np.array(texts + [np.nan], dtype=object)  # code -1 (missing) -> the last entry
    out = pd.Series(mapped[codes], index=values.index, dtype=object)
    return out.where(out != "", np.nan)


def clean_chromosomes(chromosomes: pd.Series) -> pd.Series:
    """Missing -> "undefined"; a name containing "_" (alt, random, Un contigs) -> "specialchr"."""
    out = chromosomes.astype(object).where(chromosomes.notna(), UNDEFINED)
    return out.where(~out.str.contains("_", regex=False).to_numpy(dtype=bool), SPECIAL)


def _rows(sequence: pd.Series, chromosome: pd.Series, orientation: str, targets: dict[str, np.ndarray],
          source: str, file_rows: pd.Series) -> pd.DataFrame:
    n = len(sequence)
    frame = pd.DataFrame({"sequence": sequence.to_numpy(dtype=object), "chromosome": chromosome.to_numpy(dtype=object),
                          "orientation": np.full(n, orientation, dtype=object)})
    for cell in CELLS:
        frame[cell] = targets.get(cell, np.full(n, np.nan))
    frame["_source"] = source
    frame["_row"] = file_rows.to_numpy(dtype=np.int64)
    return frame


def _merged(measured: pd.DataFrame, sequences: pd.DataFrame) -> pd.DataFrame:
    """Inner merge on `name` in the order of the measurement sheet (as published), rows without
    a name left out."""
    return measured.dropna(subset=["name"]).merge(sequences, on="name", how="inner")


def build_table(raw_dir: str) -> pd.DataFrame:
    """The published table (columns TABLE_COLUMNS, cleaned chromosomes) before the split, with
    `_source`/`_row` (where each row's sequence comes from) for messages."""
    positions_path, exps_path = os.path.join(raw_dir, POSITIONS_FILE), os.path.join(raw_dir, EXPS_FILE)
    position_columns = ["name", CHROMOSOME_COLUMN, SEQUENCE_COLUMN]
    positions = read_sheets(positions_path, {positions_sheet(cell): position_columns for cell in CELLS})
    exps = read_sheets(exps_path, {name: columns for cell in CELLS for name, columns in (
        (summary_sheet(cell), ["name", "mean"]), (forward_reverse_sheet(cell), ["name", REVERSE_COLUMN]))})
    parts = []
    for cell in CELLS:
        sheet = positions_sheet(cell)
        seqs = positions[sheet]
        seqs = pd.DataFrame({"name": element_names(seqs["name"]),
                             "chromosome": chromosome_names(seqs[CHROMOSOME_COLUMN], add_prefix=cell == "WTC11"),
                             "sequence": element_sequences(seqs, positions_path, sheet), "_row": seqs["_row"]})
        source = f"{POSITIONS_FILE}, sheet {sheet!r}"

        summary = exps[summary_sheet(cell)]
        mean = numeric_column(summary, "mean", exps_path, summary_sheet(cell))
        forward = _merged(pd.DataFrame({"name": element_names(summary["name"]), "mean": mean}), seqs)
        parts.append(_rows(forward["sequence"], forward["chromosome"], "forward", {cell: forward["mean"].to_numpy()},
                           source, forward["_row"]))

        both = exps[forward_reverse_sheet(cell)]
        reverse_values = numeric_column(both, REVERSE_COLUMN, exps_path, forward_reverse_sheet(cell))
        # the positions sheet names WTC11 elements "<name>_F", its forward/reverse sheet "<name>"
        names = element_names(both["name"], "_F" if cell == "WTC11" else "")
        reverse = _merged(pd.DataFrame({"name": names, "value": reverse_values}), seqs)
        parts.append(_rows(reverse_complements(reverse["sequence"]), reverse["chromosome"], "reverse",
                           {cell: reverse["value"].to_numpy()}, source, reverse["_row"]))

    designed_path, designed_exps_path = os.path.join(raw_dir, DESIGNED_FILE), os.path.join(raw_dir, DESIGNED_EXPS_FILE)
    target_columns = [joint_target_column(cell) for cell in CELLS]
    summary = read_sheets(designed_exps_path, {JOINT_EXPS_SHEET: ["name", *target_columns]})[JOINT_EXPS_SHEET]
    values = {cell: numeric_column(summary, column, designed_exps_path, JOINT_EXPS_SHEET)
              for cell, column in zip(CELLS, target_columns)}
    joint_seqs = read_sheets(designed_path, {JOINT_SHEET: position_columns})[JOINT_SHEET]
    joint_seqs = pd.DataFrame({"name": element_names(joint_seqs["name"]),
                               "chromosome": chromosome_names(joint_seqs[CHROMOSOME_COLUMN], add_prefix=True),
                               "sequence": element_sequences(joint_seqs, designed_path, JOINT_SHEET),
                               "_row": joint_seqs["_row"]})
    joint = _merged(pd.DataFrame({"name": element_names(summary["name"]), **values}), joint_seqs)
    parts.append(_rows(joint["sequence"], joint["chromosome"], "forward",
                       {cell: joint[cell].to_numpy() for cell in CELLS}, f"{DESIGNED_FILE}, sheet {JOINT_SHEET!r}",
                       joint["_row"]))

    table = pd.concat(parts, ignore_index=True)
    if table.empty:
        raise InputError(f"{raw_dir}: no element of the expression sheets matches a name in the sequence sheets")
    table["chromosome"] = clean_chromosomes(table["chromosome"])
    return table


# --- split ---------------------------------------------------------------------------------------
def chromosome_labels(chromosomes: pd.Series) -> np.ndarray:
    """Split label per row from the chromosome lists ("" for none): a row is in a split when
    its chromosome, or the chromosome without its first three characters ("chr"), is listed."""
    names = chromosomes.astype(object)
    short = names.str.slice(3)
    labels = np.full(len(names), "", dtype=object)
    for split, listed in CHROMOSOME_LISTS.items():
        labels[(names.isin(listed) | short.isin(listed)).to_numpy(dtype=bool)] = split
    return labels


def _undefined_counts(n: int) -> tuple[int, int]:
    n_train = int(math.ceil(UNDEFINED_FRACTIONS[0] * n))
    n_test = int(math.ceil(UNDEFINED_FRACTIONS[1] * n))
    return n_train, n_test


def published_undefined_split(n: int) -> np.ndarray:
    """Labels of n undefined-chromosome rows (in table order), as published: a permutation from
    a fresh RandomState(97); the first ceil(0.7 n) train, the next ceil(0.2 n) test, the rest val."""
    shuffled = np.arange(n)[np.random.RandomState(UNDEFINED_SPLIT_SEED).permutation(n)]
    n_train, n_test = _undefined_counts(n)
    labels = np.full(n, "val", dtype=object)
    labels[shuffled[:n_train]] = "train"
    labels[shuffled[n_train:n_train + n_test]] = "test"
    return labels


def sequence_groups(sequences: pd.Series) -> np.ndarray:
    """Group id per row (in order of first appearance): a sequence, its reverse complement and
    identical sequences share one group (key: the smaller of sequence and reverse complement)."""
    forward = sequences.astype(object)
    reverse = reverse_complements(forward)
    canonical = forward.where((forward <= reverse).to_numpy(dtype=bool), reverse)
    return pd.factorize(canonical)[0]


def split_labels(table: pd.DataFrame, undefined_split: str = "grouped") -> np.ndarray:
    """"train"/"val"/"test" per row of the table (chromosomes already cleaned).

    Rows on listed chromosomes follow their lists; a chromosome in none of the lists is refused.
    Undefined-chromosome rows: "published" assigns them row by row; "grouped" assigns sequence
    groups (see sequence_groups) with the same seed and proportions, and a group that also has a
    row on a listed chromosome follows that row's split (its first one)."""
    if undefined_split not in UNDEFINED_SPLIT_CHOICES:
        raise InputError(f"lentiMPRA undefined_split {undefined_split!r}: expected grouped or published")
    chromosomes = table["chromosome"]
    labels = chromosome_labels(chromosomes)
    undefined = (chromosomes == UNDEFINED).to_numpy(dtype=bool)
    unlisted = (labels == "") & ~undefined
    if unlisted.any():
        counts = chromosomes[unlisted].value_counts(sort=True)
        first = int(np.flatnonzero(unlisted & (chromosomes == counts.index[0]).to_numpy(dtype=bool))[0])
        others = "" if len(counts) == 1 else f" (and {len(counts) - 1} other unlisted chromosome(s): " \
            f"{', '.join(map(str, counts.index[1:6]))}{', ...' if len(counts) > 6 else ''})"
        raise InputError(f"lentiMPRA: {int(counts.iloc[0])} row(s) on chromosome {counts.index[0]!r} (first: "
                         f"{table['_source'].iloc[first]}, row {int(table['_row'].iloc[first])}) are in none of the "
                         f"train, val or test chromosome lists{others}; remove those rows from the spreadsheet")
    if not undefined.any():
        return labels
    if undefined_split == "published":
        labels[undefined] = published_undefined_split(int(undefined.sum()))
        return labels
    groups = sequence_groups(table["sequence"])
    placed = pd.DataFrame({"group": groups[~undefined], "label": labels[~undefined]}).drop_duplicates("group")
    follow = dict(zip(placed["group"].to_numpy().tolist(), placed["label"].to_numpy().tolist()))
    followed = undefined & np.isin(groups, list(follow))
    labels[followed] = pd.Series(groups[followed]).map(follow).to_numpy(dtype=object)
    free = undefined & ~followed
    free_groups = pd.unique(groups[free])  # in order of first appearance
    group_labels = published_undefined_split(len(free_groups))
    lookup = pd.Series(group_labels, index=free_groups)
    labels[free] = lookup.loc[groups[free]].to_numpy(dtype=object)
    return labels


def build_final_dataset(raw_dir: str, undefined_split: str = "grouped") -> pd.DataFrame:
    """Raw spreadsheets -> the final table: TABLE_COLUMNS plus is_train, is_test, is_val."""
    table = build_table(raw_dir)
    labels = split_labels(table, undefined_split)
    final = table[TABLE_COLUMNS].copy()
    for split in ("train", "test", "val"):
        final[f"is_{split}"] = labels == split
    return final


# --- task ----------------------------------------------------------------------------------------
class LentiMPRA(TaskDataModule):
    """Masked regression of element activity in K562, HepG2 and WTC11 (head `lentiMPRA`);
    --shrink_test_set cuts val and test to 10 rows, as published."""

    task_name = "lentiMPRA"
    raw_dirname = "lentiMPRA"
    OPTIONS = ("undefined_split",)

    @classmethod
    def run_options(cls, context: TaskContext) -> dict[str, object]:
        """How rows without a chromosome are split: --lentimpra_undefined_split."""
        return {"undefined_split": context.data.lentimpra_undefined_split}

    def __init__(self, data_dir: str, batch_size: int = 96, num_workers: int = 0, seed: int = 0,
                 shrink_test_set: bool = False, undefined_split: str = "grouped") -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, shrink_test_set=shrink_test_set)
        if undefined_split not in UNDEFINED_SPLIT_CHOICES:
            raise InputError(f"lentiMPRA undefined_split {undefined_split!r}: expected grouped or published")
        self.undefined_split = undefined_split
        # one cache per split mode, so switching --lentimpra_undefined_split never rebuilds
        self.cache_dirname = "lentiMPRA" if undefined_split == "grouped" else "lentiMPRA_published_split"
        self.head = HeadSpec("lentiMPRA", list(CELLS), kind=MASKED_REGRESSION)
        self.final_dataset: pd.DataFrame | None = None

    def raw_files(self) -> list[RawFile]:
        return [RawFile(name, gdrive_id=gdrive_id) for name, gdrive_id in GDRIVE_IDS.items()]

    def cache_params(self) -> dict:
        return {"undefined_split": self.undefined_split, "seed": UNDEFINED_SPLIT_SEED,
                "chromosomes": {split: list(listed) for split, listed in CHROMOSOME_LISTS.items()}}

    @property
    def final_dataset_path(self) -> str:
        return os.path.join(self.cache_dir, "final_dataset.tsv")

    def _path(self, name: str) -> str:
        return os.path.join(self.cache_dir, name)

    def build_cache(self) -> None:
        final = build_final_dataset(self.raw_dir, self.undefined_split)
        empty = [split for split in SPLITS if not final[f"is_{split}"].any()]
        if empty:
            raise InputError(f"{self.raw_dir}: the lentiMPRA {empty[0]} split has no rows")
        codes = seqlib.encode(final["sequence"].tolist(), source=self.final_dataset_path)
        targets = final[list(CELLS)].to_numpy(dtype=np.float32)
        for split in SPLITS:
            rows = final[f"is_{split}"].to_numpy(dtype=bool)
            save_npy(self._path(f"{split}_seqs.npy"), codes[rows])
            save_npy(self._path(f"{split}_targets.npy"), targets[rows])
            save_npy(self._path(f"{split}_mask.npy"), ~np.isnan(targets[rows]))
        save_table(final, self.final_dataset_path)  # last: its presence means the arrays are complete

    def load_datasets(self) -> None:
        for split in SPLITS:
            setattr(self, f"{split}_dataset", ArrayDataset(load_npy(self._path(f"{split}_seqs.npy")),
                                                           load_npy(self._path(f"{split}_targets.npy")),
                                                           load_npy(self._path(f"{split}_mask.npy"))))

    def split_table(self, split: str) -> pd.DataFrame:
        """Rows of final_dataset.tsv in one split, in the order its loader serves them."""
        self.prepare()
        if self.final_dataset is None:
            self.final_dataset = pd.read_csv(self.final_dataset_path, sep="\t")
        return self.final_dataset[self.final_dataset[f"is_{split}"]].reset_index(drop=True)
