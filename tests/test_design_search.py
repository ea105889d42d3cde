"""Promoter design pieces: specificity objectives, the oracle of the demo data, mutation, the two
optimisers on objectives with a known optimum, ensembles' head checks and COMs fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import raises
from torch import nn

from promoter_modelling.design import coms, search
from promoter_modelling.design.constraints import SequenceConstraints
from promoter_modelling.design.objective import specificity, specificity_torch
from promoter_modelling.fixtures.motifs import PLANTED_MOTIFS, oracle_activity, oracle_counts
from promoter_modelling.sequence import encode

RNG = np.random.default_rng(5)


# --- objectives ----------------------------------------------------------------------------------

def _reference(values: np.ndarray, target: int, kind: str) -> np.ndarray:
    out = []
    for row in values:
        others = [v for i, v in enumerate(row) if i != target]
        if kind == "mean":
            out.append(row[target] - sum(others) / len(others))
        elif kind == "max":
            out.append(row[target] - max(others))
        else:  # log2 of the target's ratio over the mean ratio of the other cells
            out.append(np.log2(2 ** row[target] / (sum(2 ** v for v in others) / len(others))))
    return np.array(out)


@pytest.mark.parametrize("kind", ["mean", "max", "de"])
@pytest.mark.parametrize("target", [0, 2])
def test_specificity_equals_its_definition(kind, target):
    values = RNG.normal(0, 2, size=(50, 3))
    np.testing.assert_allclose(specificity(values, target, kind), _reference(values, target, kind), atol=1e-9)


def test_specificity_is_differentiable_and_refuses_unknown_kinds():
    values = torch.zeros(4, 3, requires_grad=True)
    specificity_torch(values, 1, "de").sum().backward()
    np.testing.assert_allclose(values.grad.numpy(), [[-0.5, 1.0, -0.5]] * 4)
    raises("--objective 'ratio': choose one of mean, max, de", specificity, np.zeros((2, 3)), 0, "ratio")


# --- the oracle ------------------------------------------------------------------------------------

def test_oracle_counts_every_occurrence_including_overlaps():
    chars = RNG.choice(list("ACGT"), size=(40, 120))
    sequences = ["".join(row) for row in chars]
    sequences[0] = "TGTGGTTTA" * 3 + sequences[0][27:]
    sequences[1] = sequences[1][:50] + "ATGACTCATGACTCAT" + sequences[1][66:]  # two AP1 sites sharing "AT"
    expected = np.array([[sum(seq.startswith(site, i) for i in range(len(seq))) for site, _ in PLANTED_MOTIFS.values()]
                         for seq in sequences])
    np.testing.assert_array_equal(oracle_counts(encode(sequences)), expected)
    assert expected[0, 0] == 3 and expected[1, 3] >= 2
    effects = np.array([e for _, e in PLANTED_MOTIFS.values()])
    np.testing.assert_allclose(oracle_activity(encode(sequences)), expected @ effects)


# --- mutation and the optimisers -------------------------------------------------------------------

def test_mutants_differ_from_their_parent_at_most_at_the_mutated_positions():
    codes = RNG.integers(0, 4, size=(30, 100)).astype(np.uint8)
    kids = search.mutate(codes, 5, 3, np.random.default_rng(0))
    assert kids.shape == (150, 100) and kids.dtype == np.uint8 and kids.max() < 4
    changed = (kids != np.repeat(codes, 5, axis=0)).sum(axis=1)
    assert changed.max() <= 3 and changed.min() >= 1 and (changed == 3).mean() > 0.8


def _pwm_objective(weights: np.ndarray):
    """An additive objective sum_i W[i, base_i]: its optimum is the per-position argmax of W."""
    w = torch.as_tensor(weights, dtype=torch.float32)

    def objective(onehot: torch.Tensor) -> torch.Tensor:
        return (onehot * w).sum(dim=(1, 2))

    return objective


def test_gradient_ascent_reaches_the_optimum_of_an_additive_objective():
    weights = RNG.normal(size=(60, 4))
    start = RNG.integers(0, 4, size=(8, 60)).astype(np.uint8)
    options = search.SearchOptions(steps=300, lr=0.5, batch_size=3)  # several batches
    best, value = search.gradient_ascent(start, _pwm_objective(weights), options, SequenceConstraints())
    optimum = weights.argmax(axis=1)
    assert (best == optimum).all()
    np.testing.assert_allclose(value, weights.max(axis=1).sum(), rtol=1e-5)


def test_both_optimisers_keep_the_constraints_on_the_best_sequences():
    """The unconstrained optimum is all G (GC 1, one long run); the results must stay within GC
    0.4-0.6 and runs of at most 4."""
    weights = np.zeros((50, 4))
    weights[:, 2] = 1.0
    constraints = SequenceConstraints(gc_min=0.4, gc_max=0.6, max_homopolymer=4, forbidden_sites=("GGCC",))
    start = encode(["ACGT" * 12 + "AC"] * 6)
    assert constraints.satisfied(start).all()
    objective = _pwm_objective(weights)
    best, value = search.gradient_ascent(start, objective, search.SearchOptions(steps=40), constraints)
    assert constraints.satisfied(best).all() and (value >= 12.0).all()

    def score(codes):
        with torch.no_grad():
            return objective(torch.nn.functional.one_hot(torch.as_tensor(codes, dtype=torch.long), 4).float()).numpy()

    evolved, scores = search.evolve(start, score, search.SearchOptions(steps=60, children=6), constraints,
                                    np.random.default_rng(1))
    assert constraints.satisfied(evolved).all()
    assert (scores > score(start)).all() and (scores <= 30).all()  # GC <= 0.6 allows at most 30 G
    np.testing.assert_allclose(scores, score(evolved))


def test_evolution_reaches_the_optimum_of_an_additive_objective():
    weights = RNG.normal(size=(20, 4))
    objective = _pwm_objective(weights)

    def score(codes):
        with torch.no_grad():
            return objective(torch.nn.functional.one_hot(torch.as_tensor(codes, dtype=torch.long), 4).float()).numpy()

    start = RNG.integers(0, 4, size=(5, 20)).astype(np.uint8)
    evolved, scores = search.evolve(start, score, search.SearchOptions(steps=200, children=8, mutations=1),
                                    SequenceConstraints(), np.random.default_rng(0))
    assert (evolved == weights.argmax(axis=1)).all()
    np.testing.assert_allclose(scores, weights.max(axis=1).sum(), rtol=1e-5)


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "--steps must be at least 1, got 0"),
    ("children", 0, "--children must be at least 1, got 0"),
    ("lr", 0.0, "--lr and --init_scale must be positive, got 0.0 and 2.0"),
])
def test_search_options_refuse_bad_values(field, value, message):
    raises(message, search.SearchOptions, **{field: value})


# --- COMs -----------------------------------------------------------------------------------------

class _LinearModel(nn.Module):
    """A one-hot regression model with the MultiTaskModule interface used by design."""

    input_kind = "onehot"

    def __init__(self, length: int, cells: int = 3):
        super().__init__()
        self.linear = nn.Linear(length * 4, cells)
        self.hparams = {"model_name": "linear"}

    def forward(self, x, heads=None):
        return {"Fluorescence": self.linear(x.reshape(len(x), -1))}


def test_conservative_copy_lowers_the_objective_off_the_data_and_keeps_the_original():
    torch.manual_seed(0)
    length = 30
    model = _LinearModel(length)
    codes = RNG.integers(0, 4, size=(200, length)).astype(np.uint8)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(codes, dtype=torch.long), 4).float()
    with torch.no_grad():
        targets = model(onehot)["Fluorescence"].numpy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    options = coms.ConservativeOptions(alpha=1.0, steps=100, lr=1e-2, adversarial_steps=5)
    conservative = coms.conservative_copy(model, "Fluorescence", codes, targets, 0, "mean", options)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    plain_objective = coms._member_objective(model, "Fluorescence", 0, "mean")
    adversarial = coms.adversarial_sequences(plain_objective, onehot[:50], 20, 0.5)
    with torch.no_grad():
        gap_plain = (plain_objective(adversarial) - plain_objective(onehot[:50])).mean()
        copy_objective = coms._member_objective(conservative, "Fluorescence", 0, "mean")
        gap_copy = (copy_objective(adversarial) - copy_objective(onehot[:50])).mean()
    assert gap_plain > 1.0 and gap_copy < 0.5 * gap_plain
    assert not any(p.requires_grad for p in conservative.parameters())


def test_conservative_options_refuse_bad_values():
    raises("--coms_alpha must be zero or positive, got -1.0", coms.ConservativeOptions, alpha=-1.0)
    raises("--coms_steps must be at least 1, got 0", coms.ConservativeOptions, steps=0)
