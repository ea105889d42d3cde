"""Designs judged by the demo data's known expression function (the oracle), with the demo's
model: a designed promoter beats the best training promoter of its cell, the designs carry the
planted motifs that drive that cell, and conservative (COMs) optimisation beats plain gradient
ascent at the same budget. Trains the demo's small MTLucifer with five seeds, the ensemble of
`benchmarks/bench_design.py` (about 15 minutes on a 2-core CPU), so it runs only with
PROMOTER_MODELLING_SLOW_TESTS=1. With two seeds JURKAT and K562 pass but THP1 does not (best
design 1.15 against 3.45): SPI1_like gains the least per copy, and a two-member spread penalty
is noisy (docs/design.md)."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from promoter_modelling import sequence as seqlib
from promoter_modelling.fixtures.motifs import CELLS, PLANTED_MOTIFS, oracle_activity, oracle_counts

SEEDS = 5
pytestmark = pytest.mark.skipif(not os.environ.get("PROMOTER_MODELLING_SLOW_TESTS"),
                                reason="trains the demo's MTLucifer for minutes on a CPU; "
                                       "set PROMOTER_MODELLING_SLOW_TESTS=1")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> dict:
    from promoter_modelling.config import load_paths
    from promoter_modelling.demo import DEMO_NUM_SEQUENCES, demo_config
    from promoter_modelling.demo_data import generate
    from promoter_modelling.predict import run_checkpoint
    from promoter_modelling.strategies import run_strategy

    root = tmp_path_factory.mktemp("oracle")
    data = root / "data"
    generate(str(data), ["FluorescenceData"], seed=0, num_sequences=DEMO_NUM_SEQUENCES)
    config_path = root / "config.json"
    config_path.write_text(json.dumps({"root_dir": str(root / "results"), "root_data_dir": str(data)}))
    config = demo_config(str(config_path))
    run_strategy(dataclasses.replace(config, num_seeds=SEEDS, flags={**config.flags, "num_random_seeds": SEEDS}))
    saved = root / "results" / "saved_models"
    checkpoints = [run_checkpoint(str(saved / f"individual_training_on_FluorescenceData_small_seed_{s}"))
                   for s in range(SEEDS)]
    return {"root": root, "checkpoints": checkpoints, "paths": load_paths(str(config_path))}


def _oracle_specificity(codes: np.ndarray, target: int) -> np.ndarray:
    from promoter_modelling.design.objective import specificity

    return specificity(oracle_activity(codes), target, "mean")


def _design(ensemble, cell: str, conservative: bool, num_designs: int = 16, name: str = "designs"):
    from promoter_modelling.design import workflow

    options = workflow.DesignOptions(target_cell=cell, num_designs=num_designs, conservative=conservative,
                                     progress=False)
    out = ensemble["root"] / f"{name}_{cell}_{conservative}"
    designs = workflow.design_promoters(ensemble["checkpoints"], options, str(out), ensemble["paths"])
    training = workflow.training_promoters(ensemble["paths"], workflow.Ensemble(ensemble["checkpoints"][:1], cell))
    return seqlib.encode(designs["sequence"].tolist()), training.codes


@pytest.mark.parametrize("cell", CELLS)
def test_designs_beat_the_best_training_promoter_and_carry_the_cells_motifs(ensemble, cell):
    target = CELLS.index(cell)
    designs, training = _design(ensemble, cell, conservative=False)
    assert _oracle_specificity(designs, target).max() > _oracle_specificity(training, target).max()
    drivers = [j for j, (_, effects) in enumerate(PLANTED_MOTIFS.values()) if effects[target] >= 1.0]
    copies = oracle_counts(designs)
    for j in drivers:  # more copies of the cell's own motif than the training promoters have
        assert copies[:, j].mean() > oracle_counts(training)[:, j].mean() + 1.0, (cell, j, copies.mean(axis=0))


def test_conservative_models_beat_plain_gradient_ascent(ensemble):
    target = CELLS.index("JURKAT")
    plain, _ = _design(ensemble, "JURKAT", conservative=False, name="comparison")
    conservative, _ = _design(ensemble, "JURKAT", conservative=True, name="comparison")
    assert _oracle_specificity(conservative, target).mean() > _oracle_specificity(plain, target).mean()
