"""End-to-end training through the train_models.py code path, on generated data."""

import json
import os

import pandas as pd
import pytest

from promoter_modelling.cli import parse_train_args
from promoter_modelling.demo_data import generate
from promoter_modelling.errors import InputError
from promoter_modelling.strategies import run_strategy


@pytest.fixture(scope="module")
def learn_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("learn")
    generate(str(root / "data"), ["FluorescenceData"], seed=1, num_sequences=1500)
    return root


def config(root, name: str) -> str:
    path = os.path.join(root, f"{name}.json")
    with open(path, "w") as handle:
        json.dump({"root_dir": os.path.join(root, name), "root_data_dir": os.path.join(root, "data")}, handle)
    return path


def train_args(config_path, *extra):
    return parse_train_args(["--config_path", config_path, "--modelling_strategy", "single_task",
                             "--single_task", "FluorescenceData", "--model_size", "tiny", "--lr", "3e-3",
                             "--batch_size", "64", "--max_epochs", "4", "--patience", "10", "--loggers", "csv",
                             *extra])


def test_tiny_model_learns_and_writes_every_output(learn_data):
    cfg = config(learn_data, "run_a")
    summary = run_strategy(train_args(cfg))[0]
    root = os.path.join(learn_data, "run_a")
    run = os.path.join(root, "saved_models", "individual_training_on_FluorescenceData_tiny", "default")
    log = pd.read_csv(os.path.join(run, "logs", "metrics.csv"))
    val = log.dropna(subset=["val_Fluorescence_avg_epoch_loss"])
    assert val["val_Fluorescence_avg_epoch_loss"].iloc[-1] < val["val_Fluorescence_avg_epoch_loss"].iloc[0]
    assert val["val_Fluorescence_mean_PearsonR"].iloc[-1] > val["val_Fluorescence_mean_PearsonR"].iloc[0]
    assert summary["JURKAT_avg_PearsonR"] > 0.3  # planted motifs drive JURKAT strongly
    assert json.load(open(os.path.join(run, "done.txt")))["best_checkpoint"].endswith(".ckpt")
    preds = pd.read_csv(os.path.join(run, "test_predictions_Fluorescence.csv"))
    assert list(preds.columns) == ["sequence", "y_JURKAT", "y_K562", "y_THP1",
                                   "pred_JURKAT", "pred_K562", "pred_THP1"]
    summaries = os.path.join(root, "summaries")
    for name in ("individual_training_on_FluorescenceData_tiny.json", "individual_training_on_FluorescenceData_tiny.csv",
                 "individual_training_on_FluorescenceData_tiny_best_model_predictions.png", "results_index.csv"):
        assert os.path.exists(os.path.join(summaries, name)), name
    table = pd.read_csv(os.path.join(summaries, "individual_training_on_FluorescenceData_tiny.csv"), index_col=0)
    assert list(table.index) == ["seed_0", "mean", "std"]


def test_same_seed_twice_gives_identical_metrics_and_existing_models_are_reused(learn_data):
    first = run_strategy(train_args(config(learn_data, "det_1"), "--max_epochs", "2"))[0]
    second = run_strategy(train_args(config(learn_data, "det_2"), "--max_epochs", "2"))[0]
    for key in ("JURKAT_avg_PearsonR", "K562_avg_SpearmanR", "THP1_avg_R2"):
        assert first[key] == second[key]
    cfg = config(learn_data, "det_1")
    ckpt_dir = os.path.join(learn_data, "det_1", "saved_models", "individual_training_on_FluorescenceData_tiny",
                            "default", "checkpoints")
    before = {f: os.path.getmtime(os.path.join(ckpt_dir, f)) for f in os.listdir(ckpt_dir)}
    again = run_strategy(train_args(cfg, "--max_epochs", "2", "--use_existing_models"))[0]
    after = {f: os.path.getmtime(os.path.join(ckpt_dir, f)) for f in os.listdir(ckpt_dir)}
    assert before == after  # nothing retrained
    assert again["JURKAT_avg_PearsonR"] == first["JURKAT_avg_PearsonR"]


def test_unknown_task_and_metric_fail_before_training(learn_data):
    cfg = config(learn_data, "bad")
    with pytest.raises(InputError, match="unknown task 'FluorescenceDta'"):
        run_strategy(parse_train_args(["--config_path", cfg, "--modelling_strategy", "single_task",
                                       "--single_task", "FluorescenceDta"]))
    with pytest.raises(InputError, match="metric 'val_Fluorescence_mean_Pearson' is not reported"):
        run_strategy(train_args(cfg, "--metric_to_monitor", "val_Fluorescence_mean_Pearson"))
    with pytest.raises(InputError, match="needs --finetune_tasks"):
        run_strategy(parse_train_args(["--config_path", cfg, "--modelling_strategy", "pretrain+finetune",
                                       "--pretrain_tasks", "FluorescenceData"]))
