"""Sharpr_MPRA: 12 MPRA activity tracks of 145-bp sequences (Movva et al. 2019 preprocessing).

Raw files `<data>/Sharpr_MPRA/{train,valid,test}.hdf5` hold one-hot X/sequence (N, 145, 4)
and Y/output (N, 12); the split is the file (valid = validation). Targets are already
z-scored log ratios and the files already contain reverse complements, so there is no
preprocessing beyond turning the one-hot arrays into uint8 codes once (cached, memory-mapped).
Training batches are shuffled. The mean metrics average the four *_avg outputs.
"""

from __future__ import annotations

import os

import numpy as np

from promoter_modelling.errors import InputError
from promoter_modelling.heads import REGRESSION, HeadSpec
from promoter_modelling.io_utils import load_npy, save_npy
from promoter_modelling.sequence import N_CODE, PAD_CODE
from promoter_modelling.tasks.base import ArrayDataset, RawFile, TaskDataModule
from promoter_modelling.tasks.storage import npy_writer

URL = "https://mitra.stanford.edu/kundaje/projects/mpra/data/{name}"
FILES = {"train": "train.hdf5", "val": "valid.hdf5", "test": "test.hdf5"}
# The published list repeats "k562_sv40p_rep1" at index 4; rep1 / rep2 / avg per promoter and
# cell is the evident intent, so index 4 is k562_sv40p_rep2.
OUTPUT_NAMES = [
    "k562_minp_rep1", "k562_minp_rep2", "k562_minp_avg",
    "k562_sv40p_rep1", "k562_sv40p_rep2", "k562_sv40p_avg",
    "hepg2_minp_rep1", "hepg2_minp_rep2", "hepg2_minp_avg",
    "hepg2_sv40p_rep1", "hepg2_sv40p_rep2", "hepg2_sv40p_avg",
]
MEAN_OUTPUTS = [name for name in OUTPUT_NAMES if "rep" not in name]
CHUNK = 100_000


def one_hot_to_codes(one_hot: np.ndarray) -> np.ndarray:
    """(N, L, 4) one-hot (any numeric or bool dtype) -> (N, L) uint8 codes. An all-zero position
    becomes PAD (the all-zero one-hot, as the published inputs keep it); a position with several
    maximal channels (0.25 everywhere) becomes N."""
    values = np.asarray(one_hot, dtype=np.float32)
    codes = values.argmax(axis=-1).astype(np.uint8)
    top = values.max(axis=-1)
    ties = (values == top[..., None]).sum(axis=-1) > 1
    codes[ties] = N_CODE
    codes[top <= 0] = PAD_CODE
    return codes


def _open_hdf5(path: str):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: cannot be opened as HDF5 ({exc})") from exc


def _checked_shape(handle, path: str) -> tuple[int, int, int]:
    """(N, L, 4) of X/sequence (a singleton axis tolerated), after checking X and Y."""
    try:
        x, y = handle["X"]["sequence"], handle["Y"]["output"]
    except KeyError as exc:
        raise InputError(f"{path}: expected datasets X/sequence and Y/output ({exc})") from exc
    shape = x.shape[:1] + tuple(d for d in x.shape[1:] if d != 1)  # tolerate a singleton axis
    if len(shape) != 3 or shape[2] != 4:
        raise InputError(f"{path}: X/sequence has shape {x.shape}, expected (N, L, 4)")
    if y.ndim != 2 or y.shape[0] != shape[0] or y.shape[1] != len(OUTPUT_NAMES):
        raise InputError(f"{path}: Y/output has shape {y.shape}, expected ({shape[0]}, {len(OUTPUT_NAMES)})")
    return shape


def sequence_length(path: str) -> int:
    """Sequence length L of an HDF5 file's X/sequence (N, L, 4), after checking its layout."""
    with _open_hdf5(path) as handle:
        return _checked_shape(handle, path)[1]


def check_lengths(paths: dict[str, str]) -> int:
    """Every split file must hold sequences of the train file's length: a model sees one length.
    Returns that length."""
    lengths = {split: sequence_length(path) for split, path in paths.items()}
    reference = next(iter(paths))
    for split, length in lengths.items():
        if length != lengths[reference]:
            raise InputError(f"{paths[split]}: sequences are {length} bp but {paths[reference]} has "
                             f"{lengths[reference]} bp; every split must have one sequence length")
    return lengths[reference]


def convert_hdf5(path: str, seqs_path: str, targets_path: str) -> int:
    """Write the codes and float32 targets of one HDF5 file; returns the number of rows."""
    with _open_hdf5(path) as handle:
        shape = _checked_shape(handle, path)
        x, y = handle["X"]["sequence"], handle["Y"]["output"]
        with npy_writer(seqs_path, shape[:2], np.uint8) as codes:
            for a in range(0, shape[0], CHUNK):
                b = min(a + CHUNK, shape[0])
                codes[a:b] = one_hot_to_codes(np.asarray(x[a:b]).reshape(b - a, *shape[1:]))
        targets = np.asarray(y[:], dtype=np.float32)
    if not np.isfinite(targets).all():
        raise InputError(f"{path}: Y/output row {int(np.flatnonzero(~np.isfinite(targets).all(1))[0])} "
                         "has a missing or infinite value")
    save_npy(targets_path, targets)
    return shape[0]


class SharprMPRA(TaskDataModule):
    """Regression of 12 MPRA tracks (head `Sharpr_MPRA`); --shrink_test_set has no effect."""

    task_name = "Sharpr_MPRA"
    raw_dirname = "Sharpr_MPRA"
    SHRINKS_TEST_SET = False

    def __init__(self, data_dir: str, batch_size: int = 96, num_workers: int = 0, seed: int = 0,
                 shrink_test_set: bool = False) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, shrink_test_set=False)
        self.head = HeadSpec("Sharpr_MPRA", OUTPUT_NAMES, kind=REGRESSION, mean_outputs=MEAN_OUTPUTS)

    def raw_files(self) -> list[RawFile]:
        return [RawFile(name, url=URL.format(name=name)) for name in FILES.values()]

    def cache_params(self) -> dict:
        return {"all_zero_positions": "pad"}  # caches from before all-zero positions became PAD are rebuilt

    def build_cache(self) -> None:
        check_lengths({split: os.path.join(self.raw_dir, name) for split, name in FILES.items()})
        for split, name in FILES.items():
            convert_hdf5(os.path.join(self.raw_dir, name), os.path.join(self.cache_dir, f"{split}_seqs.npy"),
                         os.path.join(self.cache_dir, f"{split}_targets.npy"))

    def load_datasets(self) -> None:
        for split in FILES:
            setattr(self, f"{split}_dataset", ArrayDataset(load_npy(os.path.join(self.cache_dir, f"{split}_seqs.npy")),
                                                           load_npy(os.path.join(self.cache_dir, f"{split}_targets.npy"))))
