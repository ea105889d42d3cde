"""Edit distances between sequences and a greedy choice of high-scoring, mutually distant designs.

Distances are Levenshtein distances (substitutions, insertions and deletions each count 1),
computed by rapidfuzz in C++.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promoter_modelling.errors import InputError

_MAX_CELLS = 1 << 22  # distances held at once by `nearest` (16 MiB of int32)


def _levenshtein():
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance


def edit_distances(queries: Sequence[str], references: Sequence[str], workers: int = -1) -> np.ndarray:
    """All pairwise Levenshtein distances.

    Parameters
    ----------
    queries, references : DNA strings (any lengths).
    workers : threads (-1: all cores).

    Returns
    -------
    int32 (len(queries), len(references)).
    """
    from rapidfuzz import process

    return process.cdist(list(queries), list(references), scorer=_levenshtein(), dtype=np.int32, workers=workers)


def nearest(queries: Sequence[str], references: Sequence[str], workers: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the nearest reference of each query (ties: the lower index).

    References are compared in chunks, so at most about 4 million distances are held at once.

    Parameters
    ----------
    queries : DNA strings, e.g. designs.
    references : DNA strings, e.g. the training promoters (at least one).
    workers : threads (-1: all cores).

    Returns
    -------
    (int32 (len(queries),) distances, int64 (len(queries),) reference indices).
    """
    queries, references = list(queries), list(references)
    if not references:
        raise InputError("no reference sequences to measure the distance to")
    best = np.full(len(queries), np.iinfo(np.int32).max, dtype=np.int32)
    where = np.zeros(len(queries), dtype=np.int64)
    if not queries:
        return best, where
    chunk = max(1, _MAX_CELLS // len(queries))
    rows = np.arange(len(queries))
    for start in range(0, len(references), chunk):
        distances = edit_distances(queries, references[start : start + chunk], workers)
        column = distances.argmin(axis=1)
        closer = distances[rows, column] < best
        best[closer] = distances[rows, column][closer]
        where[closer] = start + column[closer]
    return best, where


def _check_count(flag: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{flag} {value!r} is not a whole number")
    if value < least:
        raise InputError(f"{flag} {value} must be at least {least}")


def _check_selection(sequences: Sequence[str], scores: np.ndarray, n: int, min_distance: int) -> None:
    _check_count("--num_designs", n, 1)
    _check_count("--min_distance", min_distance, 0)
    if scores.shape != (len(sequences),):
        raise InputError(f"got {scores.size} scores for {len(sequences)} sequences")


def select_diverse(sequences: Sequence[str], scores: np.ndarray, n: int, min_distance: int) -> np.ndarray:
    """Greedy choice of up to n high-scoring sequences at least min_distance edits apart.

    Candidates are taken by score, highest first (ties: lower index); a candidate closer than
    min_distance to any already chosen sequence is skipped. NaN scores are never chosen. After
    each choice, its distances to all remaining candidates take one rapidfuzz call.

    Parameters
    ----------
    sequences : candidate DNA strings.
    scores : float (len(sequences),) score per candidate.
    n : most sequences to choose (--num_designs).
    min_distance : smallest edit distance allowed between two chosen sequences (0 allows
        duplicates, 1 only rules them out).

    Returns
    -------
    int64 indices into `sequences`, in the order chosen (fewer than n when too few candidates are
    far enough apart).
    """
    from rapidfuzz import process

    scores = np.asarray(scores, dtype=np.float64)
    _check_selection(sequences, scores, n, min_distance)
    candidates = np.flatnonzero(~np.isnan(scores))
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    if min_distance == 0:
        return order[:n].astype(np.int64)
    texts = np.empty(len(sequences), dtype=object)
    texts[:] = list(sequences)
    chosen: list[int] = []
    while len(order) and len(chosen) < n:
        pick, order = int(order[0]), order[1:]
        chosen.append(pick)
        if len(order) and len(chosen) < n:
            # distances above the cutoff come back as cutoff + 1, which is enough to keep a candidate
            distances = process.cdist([texts[pick]], texts[order], scorer=_levenshtein(), dtype=np.int32,
                                      score_cutoff=min_distance - 1, workers=1)[0]
            order = order[distances >= min_distance]
    return np.array(chosen, dtype=np.int64)
