"""DNA sequence encoding: uint8 base codes, one-hot arrays, reverse complements, k-mers.

Codes are A=0, C=1, G=2, T=3, N=4 and PAD=5 (padding added by collate functions).
One-hot channels are in A, C, G, T order; N is 0.25 in every channel and PAD is all zeros,
matching the encoding the published models were trained with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from promoter_modelling.errors import InputError

ALPHABET = "ACGT"
N_CODE = 4
PAD_CODE = 5
INVALID = 255

_CODE_TABLE = np.full(256, INVALID, dtype=np.uint8)
for _code, _base in enumerate("ACGTN"):
    _CODE_TABLE[ord(_base)] = _code
    _CODE_TABLE[ord(_base.lower())] = _code

ONE_HOT_TABLE = np.array(
    [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
        [0.25, 0.25, 0.25, 0.25],
        [0, 0, 0, 0],
    ],
    dtype=np.float32,
)
COMPLEMENT_CODE = np.array([3, 2, 1, 0, 4, 5], dtype=np.uint8)  # code of each code's complement
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def _label(index: int, rows: Sequence[int] | None) -> str:
    """How an error names a sequence: its file row when known, else its index."""
    return f"row {int(rows[index])}" if rows is not None else f"sequence {index}"


def _raise_first_invalid(codes: np.ndarray, sequences: Sequence[str], lengths: np.ndarray, source: str,
                         rows: Sequence[int] | None = None) -> None:
    bad = np.flatnonzero(codes == INVALID)
    if bad.size == 0:
        return
    ends = np.cumsum(lengths)
    index = int(np.searchsorted(ends, bad[0], side="right"))
    start = int(ends[index] - lengths[index])
    position = int(bad[0] - start)
    char = sequences[index][position]
    where = f"{source}: " if source else ""
    raise InputError(
        f"{where}{_label(index, rows)} has invalid character {char!r} at position {position} (allowed: A, C, G, T, N)"
    )


def encode(sequences: Sequence[str], source: str = "", rows: Sequence[int] | None = None) -> np.ndarray:
    """Encode equal-length sequences as a (N, L) uint8 code array, vectorised over all bases.

    Raises InputError naming the sequence (its file row when `rows` gives one per sequence,
    else its index), position and character on anything but ACGTN (either case), and on
    sequences of unequal length.
    """
    if isinstance(sequences, str):
        sequences = [sequences]
    sequences = list(sequences)
    if not sequences:
        return np.zeros((0, 0), dtype=np.uint8)
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    if (lengths != lengths[0]).any():
        index = int(np.flatnonzero(lengths != lengths[0])[0])
        where = f"{source}: " if source else ""
        raise InputError(
            f"{where}{_label(index, rows)} has length {lengths[index]}, expected {lengths[0]} like {_label(0, rows)}"
        )
    flat = encode_flat(sequences, lengths, source, rows)
    return flat.reshape(len(sequences), int(lengths[0]))


def encode_flat(sequences: Sequence[str], lengths: np.ndarray | None = None, source: str = "",
                rows: Sequence[int] | None = None) -> np.ndarray:
    """Encode sequences of any lengths into one concatenated uint8 code vector."""
    if lengths is None:
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    raw = "".join(sequences).encode("ascii", errors="replace")
    codes = _CODE_TABLE[np.frombuffer(raw, dtype=np.uint8)]
    _raise_first_invalid(codes, sequences, lengths, source, rows)
    return codes


def one_hot(sequences: Sequence[str] | str, source: str = "") -> np.ndarray:
    """One-hot encode equal-length sequences: float32 (N, L, 4), or (L, 4) for one string."""
    single = isinstance(sequences, str)
    codes = encode([sequences] if single else sequences, source)
    out = ONE_HOT_TABLE.take(codes, axis=0)  # `take` is several times faster than fancy indexing here
    return out[0] if single else out


def codes_to_one_hot(codes: torch.Tensor | np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Expand uint8 codes (..., L) to one-hot (..., L, 4) on the codes' device."""
    codes = torch.as_tensor(codes)
    table = torch.as_tensor(ONE_HOT_TABLE, dtype=dtype, device=codes.device)
    # index_select with int32 indices avoids the int64 copy that table[codes.long()] makes.
    return table.index_select(0, codes.reshape(-1).int()).reshape(*codes.shape, 4)


def decode(codes: np.ndarray) -> list[str]:
    """Turn (N, L) uint8 codes back into strings (PAD codes dropped)."""
    letters = np.frombuffer(b"ACGTN\x00", dtype=np.uint8)[np.asarray(codes)]
    return [row.tobytes().replace(b"\x00", b"").decode("ascii") for row in np.atleast_2d(letters)]


def reverse_complement(sequence: str) -> str:
    """Reverse complement of a DNA string (case kept, N stays N)."""
    return sequence.translate(_COMPLEMENT)[::-1]


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of uint8 codes along the last axis."""
    return COMPLEMENT_CODE[np.asarray(codes)][..., ::-1]


def gc_content(codes: np.ndarray) -> np.ndarray:
    """Fraction of G or C bases per row of a (N, L) code array."""
    codes = np.asarray(codes)
    return ((codes == 1) | (codes == 2)).mean(axis=-1)


def kmers(sequence: str, k: int) -> list[str]:
    """Overlapping k-mers with stride 1 (as DNABERT tokenises)."""
    return [sequence[i : i + k] for i in range(len(sequence) - k + 1)]
