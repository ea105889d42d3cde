"""Distributed data-parallel training with two CPU processes (gloo) gives the results of a
single-process run with the same global batch, and only rank 0 writes results.

The model is MotifBasedFCN (linear layers and ReLUs on motif counts: no dropout and no batch
norm), so one training step on two halves of a batch, with the gradients averaged across the
processes, is the step one process takes on the whole batch; 448 training rows split evenly
into 14 batches of 32 (2 x 16), and the evaluation sets are shared without repeated rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from promoter_modelling.cli import parse_train_args

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = "MotifBasedFCN_individual_training_on_FluorescenceData_tiny"


def flags(root, name: str, data_dir: str) -> list[str]:
    config = root / f"{name}.json"
    config.write_text(json.dumps({"root_dir": str(root / name), "root_data_dir": data_dir}))
    return ["--config_path", str(config), "--modelling_strategy", "single_task", "--single_task", "FluorescenceData",
            "--model_name", "MotifBasedFCN", "--model_size", "tiny", "--motif_meme_file",
            os.path.join(data_dir, "demo_motifs.meme"), "--max_epochs", "2", "--patience", "10", "--lr", "1e-3",
            "--loggers", "csv", "--accelerator", "cpu"]


def results(root, name: str) -> dict:
    directory = root / name / "saved_models" / RUN / "default"
    with open(root / name / "summaries" / f"{RUN}.json") as handle:
        summary = json.load(handle)
    return {"summary": summary, "test": json.loads((directory / "test_metrics.json").read_text()),
            "done": json.loads((directory / "done.txt").read_text()),
            "predictions": pd.read_csv(directory / "test_predictions_Fluorescence.csv"),
            "index": pd.read_csv(root / name / "summaries" / "results_index.csv")}


def test_two_process_ddp_equals_a_single_process_run(tmp_path):
    from promoter_modelling.demo_data import generate
    from promoter_modelling.strategies import run_strategy
    from promoter_modelling.tasks.registry import build_task

    data_dir = str(tmp_path / "data")
    generate(data_dir, ["FluorescenceData"], seed=0, num_sequences=550)
    task = build_task("FluorescenceData", data_dir)
    task.prepare()
    assert len(task.train_dataset) == 448  # an even split of every batch across the two processes

    run_strategy(parse_train_args(flags(tmp_path, "single", data_dir) + ["--devices", "1", "--batch_size", "32"]))
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONHASHSEED": "0"}
    command = [sys.executable, os.path.join(REPO, "train_models.py"), *flags(tmp_path, "ddp", data_dir),
               "--devices", "2", "--strategy", "ddp", "--batch_size", "16"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    log = done.stdout + done.stderr
    assert "MEMBER: 1/2" in log and "MEMBER: 2/2" in log  # two processes took part
    assert done.stdout.count("RESULTS: ") == 1  # only rank 0 reports and writes results

    single, ddp = results(tmp_path, "single"), results(tmp_path, "ddp")
    assert ddp["done"]["epochs"] == single["done"]["epochs"] == 2
    assert os.path.basename(ddp["done"]["best_checkpoint"]) == os.path.basename(single["done"]["best_checkpoint"])
    # metrics computed by torchmetrics in each process and synchronised across the two
    synced, reference = ddp["test"]["lightning_test_metrics"], single["test"]["lightning_test_metrics"]
    assert set(synced) == set(reference) and len(reference) >= 15
    for key, value in reference.items():
        assert synced[key] == pytest.approx(value, abs=1e-5), key
    # predictions and the summary written by rank 0
    pd.testing.assert_frame_equal(ddp["predictions"], single["predictions"], atol=1e-5, rtol=0)
    metrics = [k for k, v in single["summary"].items() if "_avg_" in k and isinstance(v, float)]
    assert len(metrics) > 20
    for key in metrics:
        assert ddp["summary"][key] == pytest.approx(single["summary"][key], abs=1e-4), key
    assert len(ddp["index"]) == 1
    files = sorted(os.listdir(tmp_path / "ddp" / "saved_models" / RUN / "default" / "checkpoints"))
    assert files == sorted(os.listdir(tmp_path / "single" / "saved_models" / RUN / "default" / "checkpoints"))
