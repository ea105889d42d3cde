"""Sequence constraints on designed promoters, their checks and a small-change repair.

Constraints: GC content in [gc_min, gc_max], no run of one base longer than max_homopolymer,
and no forbidden site (e.g. a restriction site used for cloning) on either strand. All checks are
vectorised over the rows of a (N, L) uint8 code array (A=0, C=1, G=2, T=3).

Violations are looked at in a fixed order: GC content, then runs, then forbidden sites (the
leftmost hit of any site, on either strand). `problems` reports the first one per sequence and
`repair` fixes the first one per sequence in each round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from promoter_modelling.errors import InputError
from promoter_modelling.sequence import ALPHABET, encode

_NO_BASE = 255  # neighbour code outside the sequence: differs from every base
_IS_GC = np.array([False, True, True, False, False, False])  # per code: is it G or C (N and PAD are not)


@dataclass(frozen=True)
class SequenceConstraints:
    """Constraints every designed sequence must meet.

    gc_min / gc_max: allowed GC fraction (inclusive); max_homopolymer: longest run of one base
    allowed (None: any); forbidden_sites: ACGT sites forbidden on both strands (upper-cased; a
    single string is read as comma-separated sites)."""

    gc_min: float = 0.0
    gc_max: float = 1.0
    max_homopolymer: int | None = None
    forbidden_sites: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("gc_min", "gc_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InputError(f"--{name} {value!r} is not a number")
            if not 0.0 <= value <= 1.0:
                raise InputError(f"--{name} {value} is outside 0 to 1")
        if self.gc_min > self.gc_max:
            raise InputError(f"--gc_min {self.gc_min} is above --gc_max {self.gc_max}")
        _check_homopolymer(self.max_homopolymer)
        object.__setattr__(self, "forbidden_sites", _clean_sites(self.forbidden_sites))

    def is_active(self) -> bool:
        """Whether any constraint can reject a sequence."""
        return self.gc_min > 0 or self.gc_max < 1 or self.max_homopolymer is not None or bool(self.forbidden_sites)

    def satisfied(self, codes: np.ndarray) -> np.ndarray:
        """Which sequences meet every constraint.

        Parameters
        ----------
        codes : (N, L) uint8 codes.

        Returns
        -------
        bool (N,).
        """
        codes = _as_codes(codes)
        ok = np.ones(len(codes), dtype=bool)
        if self.gc_min > 0 or self.gc_max < 1:
            gc = _gc(codes)
            ok &= (gc >= self.gc_min) & (gc <= self.gc_max)
        if self.max_homopolymer is not None:
            ok &= longest_runs(codes) <= self.max_homopolymer
        for site in self.forbidden_sites:
            ok &= ~site_hits(codes, site).any(axis=1)
        return ok

    def problems(self, codes: np.ndarray) -> list[str]:
        """The first violation of each sequence as a short text ("" when it meets all constraints).

        Positions are 1-based; a reverse-strand site hit gives the forward-strand position of the
        window's first base.

        Parameters
        ----------
        codes : (N, L) uint8 codes.

        Returns
        -------
        One text per sequence, e.g. "GC 0.72 above 0.60", "run of 7 A at position 31 (at most 5
        allowed)", "forbidden site GAATTC at position 100".
        """
        codes = _as_codes(codes)
        found = _Violations(codes, self)
        return [found.text(i, self) for i in range(len(codes))]


def _check_homopolymer(value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"--max_homopolymer {value!r} is not a whole number")
    if value < 1:
        raise InputError(f"--max_homopolymer {value} must be at least 1")


def _clean_sites(sites: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Sites upper-cased as a tuple; InputError on an empty site or one with letters other than ACGT."""
    if isinstance(sites, str):
        sites = sites.split(",")
    out = []
    for site in sites:
        if not isinstance(site, str):
            raise InputError(f"--forbidden_sites {site!r} is not a DNA string")
        clean = site.strip().upper()
        if not clean:
            raise InputError("--forbidden_sites has an empty site")
        if set(clean) - set(ALPHABET):
            raise InputError(f"--forbidden_sites {site!r} has letters other than A, C, G, T")
        out.append(clean)
    return tuple(out)


def _as_codes(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"expected (N, L) codes, got shape {codes.shape}")
    return codes


def _gc(codes: np.ndarray) -> np.ndarray:
    """GC fraction per row (0 for empty rows)."""
    return _IS_GC[codes].sum(axis=1) / max(codes.shape[1], 1)


def _run_starts(codes: np.ndarray) -> np.ndarray:
    """(N, L) index of the first base of the run each position belongs to."""
    n, length = codes.shape
    index = np.broadcast_to(np.arange(length, dtype=np.int32), (n, length))
    starts = np.zeros((n, length), dtype=np.int32)
    starts[:, 1:] = np.where(codes[:, 1:] != codes[:, :-1], index[:, 1:], 0)
    return np.maximum.accumulate(starts, axis=1)


def _run_ends(codes: np.ndarray) -> np.ndarray:
    """(N, L) index of the last base of the run each position belongs to."""
    return codes.shape[1] - 1 - _run_starts(codes[:, ::-1])[:, ::-1]


def longest_runs(codes: np.ndarray) -> np.ndarray:
    """Length of the longest run of one base per row.

    Parameters
    ----------
    codes : (N, L) uint8 codes.

    Returns
    -------
    int (N,); 0 for empty rows.
    """
    codes = _as_codes(codes)
    if codes.shape[1] == 0:
        return np.zeros(len(codes), dtype=np.int32)
    return (np.arange(codes.shape[1], dtype=np.int32) - _run_starts(codes) + 1).max(axis=1)


def _site_codes(site: str) -> np.ndarray:
    return encode([site.upper()])[0]


def _matches(codes: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """(N, L - k + 1) windows equal to a k-base code pattern, one array operation per pattern base."""
    windows = codes.shape[1] - len(pattern) + 1
    if windows <= 0:
        return np.zeros((len(codes), 0), dtype=bool)
    hit = codes[:, :windows] == pattern[0]
    for offset in range(1, len(pattern)):
        hit &= codes[:, offset : offset + windows] == pattern[offset]
    return hit


def _strand_hits(codes: np.ndarray, site: str) -> tuple[np.ndarray, np.ndarray]:
    """(forward, reverse) hits of a site: windows equal to it and to its reverse complement."""
    pattern = _site_codes(site)
    reverse = (3 - pattern)[::-1]
    forward_hits = _matches(codes, pattern)
    if np.array_equal(pattern, reverse):  # palindromic site: both strands are the same windows
        return forward_hits, np.zeros_like(forward_hits)
    return forward_hits, _matches(codes, reverse)


def site_hits(codes: np.ndarray, site: str) -> np.ndarray:
    """Windows equal to a site or to its reverse complement.

    Parameters
    ----------
    codes : (N, L) uint8 codes.
    site : ACGT string of length k.

    Returns
    -------
    bool (N, L - k + 1); window j covers bases j .. j + k - 1 (empty when k > L).
    """
    forward_hits, reverse_hits = _strand_hits(_as_codes(codes), site)
    return forward_hits | reverse_hits


class _Violations:
    """The first violation of each row, of each kind, as arrays over rows."""

    def __init__(self, codes: np.ndarray, constraints: SequenceConstraints) -> None:
        n = len(codes)
        self.codes = codes
        self.gc = _gc(codes)
        self.gc_low = self.gc < constraints.gc_min
        self.gc_high = self.gc > constraints.gc_max
        self.run = np.zeros(n, dtype=bool)
        self.run_start = np.zeros(n, dtype=np.int64)
        self.run_length = np.zeros(n, dtype=np.int64)
        if constraints.max_homopolymer is not None and codes.shape[1]:
            self._find_runs(codes, constraints.max_homopolymer)
        self.site = np.zeros(n, dtype=bool)
        self.site_start = np.zeros(n, dtype=np.int64)
        self.site_index = np.zeros(n, dtype=np.int64)
        self.site_reverse = np.zeros(n, dtype=bool)
        for index, site in enumerate(constraints.forbidden_sites):
            self._add_site(codes, index, site)

    def _find_runs(self, codes: np.ndarray, limit: int) -> None:
        starts = _run_starts(codes)
        too_long = np.arange(codes.shape[1]) - starts + 1 > limit
        self.run = too_long.any(axis=1)
        rows = np.flatnonzero(self.run)
        first = too_long[rows].argmax(axis=1)
        self.run_start[rows] = starts[rows, first]
        self.run_length[rows] = _run_ends(codes[rows])[np.arange(len(rows)), first] - self.run_start[rows] + 1

    def _add_site(self, codes: np.ndarray, index: int, site: str) -> None:
        forward_hits, reverse_hits = _strand_hits(codes, site)
        hits = forward_hits | reverse_hits
        if hits.shape[1] == 0:
            return
        rows = np.flatnonzero(hits.any(axis=1))
        start = hits[rows].argmax(axis=1)
        earlier = ~self.site[rows] | (start < self.site_start[rows])
        rows, start = rows[earlier], start[earlier]
        self.site[rows] = True
        self.site_start[rows] = start
        self.site_index[rows] = index
        self.site_reverse[rows] = ~forward_hits[rows, start]

    @property
    def gc_bad(self) -> np.ndarray:
        return self.gc_low | self.gc_high

    @property
    def ok(self) -> np.ndarray:
        return ~(self.gc_bad | self.run | self.site)

    def text(self, i: int, constraints: SequenceConstraints) -> str:
        """The first violation of row i as text ("" when none)."""
        if self.gc_bad[i]:
            bound = constraints.gc_min if self.gc_low[i] else constraints.gc_max
            value, limit = _two_numbers(float(self.gc[i]), bound)
            return f"GC {value} {'below' if self.gc_low[i] else 'above'} {limit}"
        if self.run[i]:
            start = int(self.run_start[i])
            base = "ACGTN?"[min(int(self.codes[i, start]), 5)]
            return (f"run of {self.run_length[i]} {base} at position {start + 1} "
                    f"(at most {constraints.max_homopolymer} allowed)")
        if self.site[i]:
            site = constraints.forbidden_sites[self.site_index[i]]
            strand = " (reverse strand)" if self.site_reverse[i] else ""
            return f"forbidden site {site} at position {self.site_start[i] + 1}{strand}"
        return ""


def _two_numbers(value: float, bound: float) -> tuple[str, str]:
    """Value and bound with 2 decimals, or as many more (up to 6) as it takes to tell them apart."""
    for digits in range(2, 7):
        shown = f"{value:.{digits}f}", f"{bound:.{digits}f}"
        if shown[0] != shown[1]:
            break
    return shown


def _gc_reachable(length: int, constraints: SequenceConstraints) -> bool:
    """Whether some count of G/C bases in `length` bases gives a GC fraction within the bounds."""
    fractions = np.arange(length + 1) / max(length, 1)
    return bool(((fractions >= constraints.gc_min) & (fractions <= constraints.gc_max)).any())


def _choose_bases(codes: np.ndarray, rows: np.ndarray, positions: np.ndarray, want_gc: np.ndarray,
                  class_first: bool, rng: np.random.Generator) -> np.ndarray:
    """A new base for codes[rows, positions], never the current one.

    Preferred, in this order when class_first else the other way round: the wanted class
    (want_gc +1: G/C, -1: A/T, 0: the current base's class) and a base unlike both neighbours
    (so no run grows); remaining ties are broken at random.
    """
    length = codes.shape[1]
    current = codes[rows, positions]
    left = np.where(positions > 0, codes[rows, np.maximum(positions - 1, 0)], _NO_BASE)
    right = np.where(positions < length - 1, codes[rows, np.minimum(positions + 1, length - 1)], _NO_BASE)
    bases = np.arange(4)
    base_gc = _IS_GC[bases][None, :]
    wanted = np.where(want_gc[:, None] == 0, base_gc == _IS_GC[current][:, None], base_gc == (want_gc[:, None] > 0))
    apart = (bases != left[:, None]) & (bases != right[:, None])
    first, second = (wanted, apart) if class_first else (apart, wanted)
    score = 4.0 * first + 2.0 * second + rng.random((len(rows), 4))
    score[bases[None, :] == current[:, None]] = -np.inf
    return score.argmax(axis=1).astype(codes.dtype)


def _want_gc(found: _Violations, rows: np.ndarray) -> np.ndarray:
    """+1 where GC is too low, -1 where too high, 0 where within the bounds."""
    return found.gc_low[rows].astype(np.int8) - found.gc_high[rows].astype(np.int8)


def _fix_runs(codes: np.ndarray, found: _Violations, rows: np.ndarray, limit: int, rng: np.random.Generator) -> None:
    """Change one base inside the first too-long run of each row: the middle one when one change
    splits the run into allowed pieces, else base `limit` + 1 (an allowed piece to its left)."""
    length = found.run_length[rows]
    positions = found.run_start[rows] + np.minimum(limit, length // 2)
    codes[rows, positions] = _choose_bases(codes, rows, positions, _want_gc(found, rows), False, rng)


def _fix_sites(codes: np.ndarray, found: _Violations, rows: np.ndarray, sites: tuple[str, ...],
               rng: np.random.Generator) -> None:
    """Change one random base of the first forbidden-site hit of each row."""
    size = np.array([len(site) for site in sites])[found.site_index[rows]]
    positions = found.site_start[rows] + (rng.random(len(rows)) * size).astype(np.int64)
    codes[rows, positions] = _choose_bases(codes, rows, positions, _want_gc(found, rows), False, rng)


def _fix_gc(codes: np.ndarray, found: _Violations, rows: np.ndarray, rng: np.random.Generator) -> None:
    """One A/T -> G/C (GC too low) or G/C -> A/T (too high) change per row at a random position,
    preferring positions where a base of the new class can differ from both neighbours."""
    sub = codes[rows]
    to_gc = found.gc_low[rows][:, None]
    is_gc = _IS_GC[sub]
    movable = np.where(to_gc, (sub == 0) | (sub == 3), is_gc)
    # both neighbours of the new class and unlike each other: every base of that class makes a run
    left = np.zeros_like(is_gc)
    right = np.zeros_like(is_gc)
    left[:, 1:] = is_gc[:, :-1] == to_gc
    right[:, :-1] = is_gc[:, 1:] == to_gc
    unlike = np.ones_like(is_gc)
    unlike[:, 1:-1] = sub[:, :-2] != sub[:, 2:]
    boxed = left & right & unlike
    keys = rng.random(sub.shape) - boxed - 2.0 * ~movable
    positions = keys.argmax(axis=1)
    want = np.where(found.gc_low[rows], 1, -1).astype(np.int8)
    codes[rows, positions] = _choose_bases(codes, rows, positions, want, True, rng)


def repair(codes: np.ndarray, constraints: SequenceConstraints, rng: np.random.Generator,
           max_rounds: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Make sequences meet the constraints with few base changes.

    Each round changes one base in every row that still violates a constraint, fixing its first
    violation: a base inside a too-long run (to one unlike both neighbours), a random base of the
    first forbidden-site hit, or, for GC out of range, one A/T <-> G/C change at a random position.
    A row is left alone once it meets the constraints; rows that already do are never changed.

    Parameters
    ----------
    codes : (N, L) uint8 codes (not modified).
    constraints : what the rows must meet.
    rng : random generator for the positions and bases chosen.
    max_rounds : most changes made to one row.

    Returns
    -------
    (repaired copy, bool (N,) mask of rows that meet the constraints). Rows that could not be
    repaired within max_rounds (or at all, e.g. no GC count of L bases is within the bounds) come
    back unchanged, with mask False.
    """
    original = _as_codes(codes)
    out = original.copy()
    mask = np.ones(len(out), dtype=bool)
    if not constraints.is_active() or len(out) == 0:
        return out, mask
    pending = np.arange(len(out))
    if not _gc_reachable(out.shape[1], constraints):
        max_rounds = 0
    for round_ in range(max_rounds + 1):
        sub = out[pending]
        found = _Violations(sub, constraints)
        pending, sub, found = _keep_bad(pending, sub, found)
        if len(pending) == 0 or round_ == max_rounds:
            break
        _repair_round(sub, found, constraints, rng)
        out[pending] = sub
    mask[pending] = False
    out[pending] = original[pending]
    return out, mask


def _keep_bad(pending: np.ndarray, sub: np.ndarray, found: _Violations) -> tuple[np.ndarray, np.ndarray, _Violations]:
    """Drop the rows that now meet the constraints."""
    bad = ~found.ok
    if bad.all():
        return pending, sub, found
    return pending[bad], sub[bad], _subset(found, bad)


def _subset(found: _Violations, keep: np.ndarray) -> _Violations:
    part = object.__new__(_Violations)
    for name, value in vars(found).items():
        setattr(part, name, value[keep])
    return part


def _repair_round(sub: np.ndarray, found: _Violations, constraints: SequenceConstraints,
                  rng: np.random.Generator) -> None:
    """One change in every row of `sub` (all violating), in place."""
    run_rows = np.flatnonzero(found.run)
    site_rows = np.flatnonzero(found.site & ~found.run)
    gc_rows = np.flatnonzero(found.gc_bad & ~found.run & ~found.site)
    if len(run_rows):
        _fix_runs(sub, found, run_rows, constraints.max_homopolymer, rng)
    if len(site_rows):
        _fix_sites(sub, found, site_rows, constraints.forbidden_sites, rng)
    if len(gc_rows):
        _fix_gc(sub, found, gc_rows, rng)
