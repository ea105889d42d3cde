"""The sequences explained: a FASTA/CSV file (as `predict` reads it) or one split of a
fluorescence task (the split the models were trained with)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from promoter_modelling import predict
from promoter_modelling import sequence as seqlib
from promoter_modelling.config import Paths
from promoter_modelling.errors import InputError

SPLITS = ("train", "val", "test", "all")


@dataclass
class Sequences:
    """uint8 codes (N, L) with one id per row and, for task splits, the measured values."""

    ids: list[str]
    codes: np.ndarray
    measured: np.ndarray | None = None

    def first(self, n: int | None) -> Sequences:
        """The first `n` sequences (all when `n` is None)."""
        if n is None:
            return self
        return Sequences(self.ids[:n], self.codes[:n], None if self.measured is None else self.measured[:n])


def from_file(path: str, length: int | None, pad_or_crop: bool = False) -> Sequences:
    """Sequences of a FASTA or CSV/TSV file, checked (bases, length) as `predict` checks them.

    Records without an id are named `seq_<row>` (1-based)."""
    records = predict.read_sequences(path)
    predict.check_bases(records)
    fitted, _ = predict.fit_length(records, length, pad_or_crop)
    ids = records.ids or [f"seq_{i + 1}" for i in range(len(fitted))]
    return Sequences(list(ids), seqlib.encode(fitted, source=path))


def from_task(paths: Paths, task: str, split: str, models) -> Sequences:
    """Promoters of one split of a fluorescence task, split as the models were trained.

    Ids are `<split>_<row>` (the row of the task's table); `measured` holds the task's cells."""
    from promoter_modelling.analysis.common import fluorescence_data, models_split_seed
    from promoter_modelling.tasks.registry import is_fluorescence_task

    if split not in SPLITS:
        raise InputError(f"--split {split!r} is not one of {', '.join(SPLITS)}")
    if not is_fluorescence_task(task):
        raise InputError(f"--task {task!r}: splits can be read for fluorescence tasks (FluorescenceData, "
                         "FluorescenceData_K562, ...); write other sequences to a FASTA file and use --input")
    merged, codes = fluorescence_data(paths, task, models_split_seed(models, split))
    rows = np.arange(len(merged)) if split == "all" else np.flatnonzero(merged[f"is_{split}"].to_numpy(dtype=bool))
    cells = [c for c in ("JURKAT", "K562", "THP1") if c in merged.columns]
    measured = merged.iloc[rows][cells].to_numpy(dtype=np.float32) if cells else None
    return Sequences([f"{split}_{i}" for i in rows], codes[rows], measured)
