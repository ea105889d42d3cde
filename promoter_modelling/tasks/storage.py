"""On-disk arrays for large task caches: .npy files filled in place, then renamed.

A task with about a million examples writes its inputs chunk by chunk into a memory-mapped
.npy (never holding them all in RAM) and reads them back memory-mapped (io_utils.load_npy).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from promoter_modelling.download import atomic_path


@contextmanager
def npy_writer(path: str, shape: tuple[int, ...], dtype: np.dtype | type) -> Iterator[np.ndarray]:
    """Yield a writable memory-mapped .npy of `shape`; it appears at `path` only if the block
    finishes without an error."""
    with atomic_path(path, suffix=".npy") as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        try:
            yield array
            array.flush()
        finally:
            del array


def ragged_offsets(lengths: np.ndarray) -> np.ndarray:
    """int64 offsets (n + 1) of n concatenated pieces with the given lengths."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def ragged_take(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat element indices of the pieces `rows` (in that order) and their lengths."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    ends = np.cumsum(lengths)
    flat = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) - np.repeat(ends - lengths, lengths)
    return flat + np.repeat(starts, lengths), lengths


