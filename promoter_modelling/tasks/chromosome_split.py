"""Chromosome-held-out splits shared by the genome-derived tasks (RNA-seq, ENCODE)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promoter_modelling.errors import InputError

TRAIN_CHROMOSOMES = ("1", "3", "5", "6", "7", "8", "11", "12", "14", "15", "16", "18", "19", "22")
TEST_CHROMOSOMES = ("2", "9", "10", "13", "20", "21")
VAL_CHROMOSOMES = ("4", "17")
SPLITS = ("train", "val", "test")


def split_lists(train: Sequence[str] = TRAIN_CHROMOSOMES, val: Sequence[str] = VAL_CHROMOSOMES,
                test: Sequence[str] = TEST_CHROMOSOMES) -> dict[str, list[str]]:
    """Chromosome names per split (without a "chr" prefix); they must not overlap."""
    lists = {"train": [str(c) for c in train], "val": [str(c) for c in val], "test": [str(c) for c in test]}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        common = sorted(set(lists[a]) & set(lists[b]))
        if common:
            raise InputError(f"chromosome(s) {', '.join(common)} are in both the {a} and the {b} split")
    return lists


def chromosome_split(chromosomes: np.ndarray | Sequence[str], lists: dict[str, list[str]], prefix: str = "") -> np.ndarray:
    """Split label ("train"/"val"/"test", "" for none) of each chromosome name.

    `prefix` is prepended to the list entries (ENCODE names chromosomes "chr1", Ensembl "1")."""
    names = np.asarray(chromosomes).astype(str)
    labels = np.full(names.shape, "", dtype=object)
    for split in SPLITS:
        labels[np.isin(names, [prefix + c for c in lists[split]])] = split
    return labels
