"""Training on the Malinois MPRA fixture: the small Malinois model (branched head, L1KLmixed on
the measured cells, its Adam + warm-restart recipe) learns every cell; Malinois MPRA as a
pretraining task for the fluorescence data, end to end."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from promoter_modelling.cli import parse_train_args
from promoter_modelling.demo_data import generate
from promoter_modelling.fixtures import malinois as malinois_fixture
from promoter_modelling.strategies import run_strategy
from promoter_modelling.tasks.malinois import CELLS


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("malinois_training")
    generate(str(root / "data"), ["FluorescenceData"], seed=2, num_sequences=600)
    malinois_fixture.generate(str(root / "data"), np.random.default_rng(2), num_elements=5000)
    (root / "config.json").write_text(json.dumps({"root_dir": str(root / "results"),
                                                  "root_data_dir": str(root / "data")}))
    return str(root)


def test_small_malinois_learns_every_cell(root, single_thread):
    config = parse_train_args(["--config_path", os.path.join(root, "config.json"), "--model_name", "Malinois",
                               "--modelling_strategy", "single_task", "--single_task", "Malinois_MPRA",
                               "--model_size", "small", "--lr", "0.0032658700881052086", "--weight_decay",
                               "0.0003438210249762151", "--batch_size", "64", "--max_epochs", "10", "--patience", "10",
                               "--loggers", "csv", "--metric_to_monitor", "val_MalinoisMPRA_mean_SpearmanR"])
    summary = run_strategy(config)[0]
    for cell in CELLS:
        assert summary[f"{cell}_avg_PearsonR"] > 0.5, (cell, summary[f"{cell}_avg_PearsonR"])
    run = os.path.join(root, "results", "saved_models", "Malinois_individual_training_on_Malinois_MPRA_small",
                       "default")
    predictions = pd.read_csv(os.path.join(run, "test_predictions_MalinoisMPRA.csv"))
    assert list(predictions.columns[:2]) == ["ID", "sequence"]
    assert predictions["ID"].str.split(":").str[0].isin(["7", "13"]).all()
    # the reported figure is the measured rows' Pearson r, computed here independently
    for cell in CELLS:
        measured = predictions[f"y_{cell}"].notna()
        r = np.corrcoef(predictions.loc[measured, f"y_{cell}"], predictions.loc[measured, f"pred_{cell}"])[0, 1]
        assert r == pytest.approx(summary[f"{cell}_avg_PearsonR"], abs=1e-5)
    assert predictions[[f"y_{c}" for c in CELLS]].isna().any().any()  # the union has unmeasured cells


def test_pretraining_on_malinois_then_finetuning_on_fluorescence(root, single_thread):
    config = parse_train_args(["--config_path", os.path.join(root, "config.json"), "--modelling_strategy",
                               "pretrain+finetune", "--pretrain_tasks", "Malinois_MPRA", "--finetune_tasks",
                               "FluorescenceData", "--model_size", "tiny", "--lr", "1e-3", "--pretrain_lr", "1e-3",
                               "--max_epochs", "1", "--pretrain_max_epochs", "1", "--batch_size", "64",
                               "--pretrain_batch_size", "64", "--shrink_test_set", "--loggers", "csv"])
    summaries = run_strategy(config)
    assert summaries[0]["runs"] == ["pretrain_on_Malinois_MPRA_tiny"]
    final = summaries[-1]
    assert final["modelling_strategy"] == "pretrain+finetune"
    assert np.isfinite(final["JURKAT_avg_PearsonR"])
    pretrain_log = os.path.join(root, "results", "saved_models", "pretrain_on_Malinois_MPRA_tiny", "default",
                                "test_metrics.json")
    assert os.path.exists(pretrain_log)
