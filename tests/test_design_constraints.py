"""Design constraints (GC, homopolymer runs, forbidden sites), their repair, edit distances and the
diverse selection of designs, each checked against a plain-Python reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import raises

from promoter_modelling.design import selection
from promoter_modelling.design.constraints import SequenceConstraints, longest_runs, repair, site_hits
from promoter_modelling.design.selection import edit_distances, nearest, select_diverse
from promoter_modelling.sequence import decode, encode, reverse_complement

# --- plain-Python references ----------------------------------------------------------------


def ref_gc(seq: str) -> float:
    return (seq.count("G") + seq.count("C")) / len(seq)


def ref_longest_run(seq: str) -> int:
    return max(len(list(group)) for _, group in itertools.groupby(seq))


def ref_site_starts(seq: str, site: str) -> set[int]:
    """0-based starts of windows equal to the site or its reverse complement (via str.find)."""
    starts = set()
    for pattern in (site, reverse_complement(site)):
        at = seq.find(pattern)
        while at != -1:
            starts.add(at)
            at = seq.find(pattern, at + 1)
    return starts


def ref_ok(seq: str, c: SequenceConstraints) -> bool:
    if not c.gc_min <= ref_gc(seq) <= c.gc_max:
        return False
    if c.max_homopolymer is not None and ref_longest_run(seq) > c.max_homopolymer:
        return False
    return not any(ref_site_starts(seq, site) for site in c.forbidden_sites)


def ref_run_or_site_problem(seq: str, c: SequenceConstraints) -> str:
    """The text `problems` gives for the first run or site violation (no GC bounds)."""
    if c.max_homopolymer is not None:
        position = 0
        for base, group in itertools.groupby(seq):
            size = len(list(group))
            if size > c.max_homopolymer:
                return f"run of {size} {base} at position {position + 1} (at most {c.max_homopolymer} allowed)"
            position += size
    hits = []
    for order, site in enumerate(c.forbidden_sites):
        starts = ref_site_starts(seq, site)
        if starts:
            hits.append((min(starts), order, site))
    if not hits:
        return ""
    start, _, site = min(hits)
    strand = "" if seq[start : start + len(site)] == site else " (reverse strand)"
    return f"forbidden site {site} at position {start + 1}{strand}"


def ref_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def random_codes(rng: np.random.Generator, n: int, length: int, skew: bool = True) -> np.ndarray:
    """Random codes; with skew, A-rich so that runs, sites and low GC turn up often."""
    p = [0.4, 0.15, 0.15, 0.3] if skew else None
    return rng.choice(4, size=(n, length), p=p).astype(np.uint8)


CONSTRAINT_SETS = [
    SequenceConstraints(),
    SequenceConstraints(gc_min=0.4, gc_max=0.6),
    SequenceConstraints(max_homopolymer=3),
    SequenceConstraints(max_homopolymer=1),
    SequenceConstraints(forbidden_sites=("GAATTC", "GGTCTC", "AAT")),
    SequenceConstraints(gc_min=0.35, gc_max=0.65, max_homopolymer=4, forbidden_sites=("GAATTC", "GAGACC", "TTA")),
]

# --- checks ---------------------------------------------------------------------------------


def test_longest_runs_and_site_hits_match_reference():
    rng = np.random.default_rng(1)
    codes = random_codes(rng, 300, 40)
    seqs = decode(codes)
    assert longest_runs(codes).tolist() == [ref_longest_run(s) for s in seqs]
    for site in ("A", "AAT", "GAATTC", "GGTCTC", "ACGT"):
        hits = site_hits(codes, site)
        assert hits.shape == (300, 40 - len(site) + 1)
        assert [set(np.flatnonzero(row).tolist()) for row in hits] == [ref_site_starts(s, site) for s in seqs]
    assert site_hits(codes, "A" * 41).shape == (300, 0)


@pytest.mark.parametrize("constraints", CONSTRAINT_SETS)
def test_satisfied_matches_reference(constraints):
    rng = np.random.default_rng(2)
    codes = random_codes(rng, 400, 50)
    expected = [ref_ok(s, constraints) for s in decode(codes)]
    assert constraints.satisfied(codes).tolist() == expected
    if constraints.is_active() and constraints.max_homopolymer != 1:  # (runs of 1 only: every row fails)
        assert 0 < sum(expected) < len(expected)  # the data test both outcomes


@pytest.mark.parametrize("constraints", [c for c in CONSTRAINT_SETS if c.gc_min == 0 and c.gc_max == 1])
def test_problems_match_reference(constraints):
    rng = np.random.default_rng(3)
    codes = random_codes(rng, 300, 50)
    texts = constraints.problems(codes)
    assert texts == [ref_run_or_site_problem(s, constraints) for s in decode(codes)]
    assert [t == "" for t in texts] == constraints.satisfied(codes).tolist()


@pytest.mark.parametrize("seq, constraints, text", [
    ("GGGCCCGGAT", SequenceConstraints(gc_max=0.6), "GC 0.80 above 0.60"),
    ("AATTAATTGC", SequenceConstraints(gc_min=0.4), "GC 0.20 below 0.40"),
    ("GC" + "A" * 198, SequenceConstraints(gc_min=0.0105), "GC 0.010 below 0.011"),
    ("ACGTAAAAAAACGT", SequenceConstraints(max_homopolymer=5), "run of 7 A at position 5 (at most 5 allowed)"),
    ("CCGAATTCAA", SequenceConstraints(forbidden_sites=("gaattc",)), "forbidden site GAATTC at position 3"),
    ("TTGAGACCTT", SequenceConstraints(forbidden_sites=("GGTCTC",)),
     "forbidden site GGTCTC at position 3 (reverse strand)"),
    ("GGTCTCGAATTC", SequenceConstraints(forbidden_sites=("GAATTC", "GGTCTC")), "forbidden site GGTCTC at position 1"),
    # checked in the order GC, runs, sites
    ("GGGGGGAATTC", SequenceConstraints(gc_max=0.5, max_homopolymer=3, forbidden_sites=("GAATTC",)),
     "GC 0.64 above 0.50"),
    ("GGGGGGAATTC", SequenceConstraints(max_homopolymer=3, forbidden_sites=("GAATTC",)),
     "run of 6 G at position 1 (at most 3 allowed)"),
    ("ACGTACGTAC", SequenceConstraints(0.4, 0.6, 2, ("GAATTC",)), ""),
])
def test_problem_texts(seq, constraints, text):
    assert constraints.problems(encode([seq])) == [text]


@pytest.mark.parametrize("kwargs, message", [
    ({"gc_min": 0.8, "gc_max": 0.6}, "--gc_min 0.8 is above --gc_max 0.6"),
    ({"gc_min": -0.1}, "--gc_min -0.1 is outside 0 to 1"),
    ({"gc_max": 1.5}, "--gc_max 1.5 is outside 0 to 1"),
    ({"gc_max": float("nan")}, "--gc_max nan is outside 0 to 1"),
    ({"gc_min": "0.4"}, "--gc_min '0.4' is not a number"),
    ({"max_homopolymer": 0}, "--max_homopolymer 0 must be at least 1"),
    ({"max_homopolymer": 2.5}, "--max_homopolymer 2.5 is not a whole number"),
    ({"forbidden_sites": ("GAATTC", "")}, "--forbidden_sites has an empty site"),
    ({"forbidden_sites": ("GANTTC",)}, "--forbidden_sites 'GANTTC' has letters other than A, C, G, T"),
])
def test_constraint_errors(kwargs, message):
    raises(message, SequenceConstraints, **kwargs)


def test_constraints_normalised():
    c = SequenceConstraints(forbidden_sites=["gaattc", " GGTCTC "])
    assert c.forbidden_sites == ("GAATTC", "GGTCTC")
    assert SequenceConstraints(forbidden_sites="gaattc,AAGCTT").forbidden_sites == ("GAATTC", "AAGCTT")
    assert not SequenceConstraints().is_active()
    assert all(c.is_active() for c in CONSTRAINT_SETS[1:])


# --- repair ---------------------------------------------------------------------------------


@pytest.mark.parametrize("constraints", CONSTRAINT_SETS[1:])
def test_repair_meets_reference_and_keeps_valid_rows(constraints):
    rng = np.random.default_rng(4)
    codes = random_codes(rng, 300, 60)
    before = codes.copy()
    valid = constraints.satisfied(codes)
    out, mask = repair(codes, constraints, np.random.default_rng(0))
    assert np.array_equal(codes, before)  # input untouched
    assert mask.all()
    assert all(ref_ok(s, constraints) for s in decode(out))
    assert np.array_equal(out[valid], codes[valid])
    assert (out[~valid] != codes[~valid]).any(axis=1).all()
    assert (out != codes).sum(axis=1).max() <= 20


@pytest.mark.parametrize("run", range(6, 18))
def test_repair_run_with_fewest_changes(run):
    """A run of r > 5 A's needs ceil((r - 5) / 6) changes: one while r <= 11."""
    seq = "CGTCGT" + "A" * run + "CGTCGT"
    constraints = SequenceConstraints(max_homopolymer=5)
    out, mask = repair(encode([seq]), constraints, np.random.default_rng(run))
    fixed = decode(out)[0]
    changed = [i for i, (x, y) in enumerate(zip(seq, fixed)) if x != y]
    assert mask.tolist() == [True] and ref_longest_run(fixed) <= 5
    assert len(changed) == math.ceil((run - 5) / 6)
    assert all(6 <= i < 6 + run and fixed[i] not in (fixed[i - 1], fixed[i + 1]) for i in changed)


@pytest.mark.parametrize("seq, site", [
    ("ACGTGAATTCACGT", "GAATTC"),
    ("ACGTGAGACCACGT", "GGTCTC"),  # reverse strand
])
def test_repair_site_with_one_change(seq, site):
    constraints = SequenceConstraints(forbidden_sites=(site,))
    for seed in range(20):
        out, mask = repair(encode([seq]), constraints, np.random.default_rng(seed))
        fixed = decode(out)[0]
        changed = [i for i, (x, y) in enumerate(zip(seq, fixed)) if x != y]
        assert mask.tolist() == [True] and ref_ok(fixed, constraints)
        assert len(changed) == 1 and 4 <= changed[0] < 10


@pytest.mark.parametrize("gc_min, gc_max, skew", [(0.5, 1.0, True), (0.0, 0.3, False), (0.45, 0.55, False)])
def test_repair_gc_with_fewest_changes(gc_min, gc_max, skew):
    """Each change moves GC one base the right way: as many changes as bases GC is out of range."""
    rng = np.random.default_rng(5)
    length = 100
    codes = random_codes(rng, 200, length, skew)
    constraints = SequenceConstraints(gc_min=gc_min, gc_max=gc_max)
    out, mask = repair(codes, constraints, rng, max_rounds=100)
    count = np.array([s.count("G") + s.count("C") for s in decode(codes)])
    allowed = [k for k in range(length + 1) if gc_min <= k / length <= gc_max]
    needed = np.maximum(min(allowed) - count, 0) + np.maximum(count - max(allowed), 0)
    assert mask.all() and all(ref_ok(s, constraints) for s in decode(out))
    assert (out != codes).sum(axis=1).tolist() == needed.tolist()
    assert needed.max() > 0


@pytest.mark.parametrize("constraints, length", [
    (SequenceConstraints(gc_min=0.5, gc_max=0.5), 51),  # no GC count of 51 bases gives exactly 0.5
    (SequenceConstraints(forbidden_sites=("A", "C", "G", "T")), 40),  # every base is forbidden
    (SequenceConstraints(max_homopolymer=1, forbidden_sites=("AC", "AG", "AT", "CA", "CG", "CT", "GA", "GC", "GT",
                                                             "TA", "TC", "TG")), 40),  # nothing fits both
])
def test_repair_gives_up_on_impossible_constraints(constraints, length):
    codes = random_codes(np.random.default_rng(6), 50, length, skew=False)
    out, mask = repair(codes, constraints, np.random.default_rng(0), max_rounds=30)
    assert not mask.any()
    assert np.array_equal(out, codes)  # rows that cannot be repaired come back unchanged


def test_repair_max_rounds_bounds_changes():
    codes = encode(["A" * 30, "ACGT" * 7 + "AC"])
    constraints = SequenceConstraints(max_homopolymer=2)
    out, mask = repair(codes, constraints, np.random.default_rng(0), max_rounds=0)
    assert mask.tolist() == [False, True] and np.array_equal(out, codes)
    out, mask = repair(codes, constraints, np.random.default_rng(0), max_rounds=10)
    assert mask.tolist() == [True, True] and (out[0] != codes[0]).sum() == 10


# --- edit distances and selection -------------------------------------------------------------


def mutants(rng: np.random.Generator, parents: int, per_parent: int, length: int) -> list[str]:
    """Clusters of near-identical sequences: each parent with a few random edits."""
    out = []
    for parent in decode(random_codes(rng, parents, length, skew=False)):
        for _ in range(per_parent):
            seq = list(parent)
            for _ in range(rng.integers(0, 4)):
                at = int(rng.integers(len(seq)))
                kind = rng.integers(3)
                if kind == 0:
                    seq[at] = "ACGT"[rng.integers(4)]
                elif kind == 1:
                    seq.insert(at, "ACGT"[rng.integers(4)])
                elif len(seq) > 1:
                    del seq[at]
            out.append("".join(seq))
    return out


def test_edit_distances_match_dynamic_programming():
    rng = np.random.default_rng(7)
    queries = mutants(rng, 3, 4, 15) + [""]
    references = mutants(rng, 3, 3, 12) + ["", "A"]
    distances = edit_distances(queries, references)
    assert distances.dtype == np.int32 and distances.shape == (13, 11)
    assert distances.tolist() == [[ref_levenshtein(q, r) for r in references] for q in queries]


@pytest.mark.parametrize("cells", [1, 7, 1 << 22])
def test_nearest_matches_brute_force(monkeypatch, cells):
    monkeypatch.setattr(selection, "_MAX_CELLS", cells)  # small values force many reference chunks
    rng = np.random.default_rng(8)
    references = mutants(rng, 4, 5, 20)
    references += references[:5]  # duplicates: ties go to the lower index
    queries = mutants(rng, 2, 3, 20) + references[3:6]
    distances, index = nearest(queries, references)
    table = [[ref_levenshtein(q, r) for r in references] for q in queries]
    assert distances.tolist() == [min(row) for row in table]
    assert index.tolist() == [row.index(min(row)) for row in table]


def ref_select(sequences, scores, n, min_distance):
    order = sorted((i for i in range(len(sequences)) if not math.isnan(scores[i])), key=lambda i: (-scores[i], i))
    chosen = []
    for i in order:
        if len(chosen) == n:
            break
        if all(ref_levenshtein(sequences[i], sequences[j]) >= min_distance for j in chosen):
            chosen.append(i)
    return chosen


@pytest.mark.parametrize("n, min_distance", [(5, 0), (5, 1), (6, 3), (40, 6), (3, 12)])
def test_select_diverse_matches_greedy_reference(n, min_distance):
    rng = np.random.default_rng(9)
    sequences = mutants(rng, 6, 5, 16)
    scores = rng.random(len(sequences)).round(1)  # ties are frequent
    scores[[0, 7, 8]] = np.nan
    chosen = select_diverse(sequences, scores, n, min_distance)
    assert chosen.tolist() == ref_select(sequences, scores, n, min_distance)
    assert chosen[0] == np.nanargmax(scores)
    assert not np.isnan(scores[chosen]).any()
    assert all(ref_levenshtein(sequences[a], sequences[b]) >= min_distance for a, b in itertools.combinations(chosen, 2))
    if n == 40:
        assert 0 < len(chosen) < n  # the clusters allow only a few far-apart picks


def test_select_diverse_edge_cases():
    assert select_diverse(["AAAA", "AAAA", "CCCC"], np.array([1.0, 2.0, 0.5]), 3, 1).tolist() == [1, 2]
    assert select_diverse(["AAAA", "AAAA"], np.array([1.0, 1.0]), 3, 0).tolist() == [0, 1]
    assert select_diverse(["AAAA", "CCCC"], np.array([np.nan, np.nan]), 2, 1).tolist() == []


@pytest.mark.parametrize("call, message", [
    (lambda: select_diverse(["A"], np.ones(1), 0, 1), "--num_designs 0 must be at least 1"),
    (lambda: select_diverse(["A"], np.ones(1), 1.5, 1), "--num_designs 1.5 is not a whole number"),
    (lambda: select_diverse(["A"], np.ones(1), 1, -1), "--min_distance -1 must be at least 0"),
    (lambda: select_diverse(["A", "C"], np.ones(3), 1, 1), "got 3 scores for 2 sequences"),
    (lambda: nearest(["A"], []), "no reference sequences to measure the distance to"),
])
def test_selection_errors(call, message):
    raises(message, call)
