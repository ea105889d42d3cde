"""A training run killed (SIGKILL) during its second epoch and restarted with the same command
resumes from last.ckpt, trains the same number of epochs and ends with the summary of an
uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

from promoter_modelling.cli import parse_train_args

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = "PureCNN_individual_training_on_FluorescenceData_tiny"
FLAGS = ["--modelling_strategy", "single_task", "--single_task", "FluorescenceData", "--model_name", "PureCNN",
         "--model_size", "tiny", "--max_epochs", "2", "--patience", "10", "--batch_size", "32", "--lr", "1e-3",
         "--loggers", "csv", "--accelerator", "cpu", "--use_existing_models"]
# Lightning's progress bar line once at least one batch of the second epoch (index 1) is done
SECOND_EPOCH_RUNNING = re.compile(rb"Epoch 1:\s+\d+%\|[^|]*\|\s*[1-9]\d*/\d+")


def write_config(root, name: str, data_dir: str) -> str:
    path = root / f"{name}.json"
    path.write_text(json.dumps({"root_dir": str(root / name), "root_data_dir": data_dir}))
    return str(path)


def run_dir(root, name: str):
    return root / name / "saved_models" / RUN / "default"


def summary(root, name: str) -> dict:
    with open(root / name / "summaries" / f"{RUN}.json") as handle:
        return json.load(handle)


def kill_during_second_epoch(command: list[str], env: dict, last_ckpt, timeout: float = 400.0) -> bytes:
    """Start `command`, SIGKILL it once last.ckpt exists and the second epoch is under way."""
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = bytearray()

    def read() -> None:
        while chunk := proc.stdout.read1(4096):
            output.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if last_ckpt.exists() and SECOND_EPOCH_RUNNING.search(bytes(output)):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    assert proc.returncode == -signal.SIGKILL, f"run ended on its own ({proc.returncode}):\n{output[-3000:].decode()}"
    return bytes(output)


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tmp_path, fluorescence_data_dir):
    from promoter_modelling.strategies import run_strategy

    # the subprocesses compute with as many threads as this process (float sums depend on it)
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    # uninterrupted reference run
    run_strategy(parse_train_args(FLAGS + ["--config_path", write_config(tmp_path, "reference", fluorescence_data_dir)]))

    command = [sys.executable, os.path.join(REPO, "train_models.py"), *FLAGS,
               "--config_path", write_config(tmp_path, "killed", fluorescence_data_dir)]
    directory = run_dir(tmp_path, "killed")
    last = directory / "checkpoints" / "last.ckpt"
    kill_during_second_epoch(command, env, last)
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == 0  # killed inside epoch 2
    assert not (directory / "done.txt").exists()
    assert not [f for f in os.listdir(directory / "checkpoints") if f.endswith(".part")]

    restarted = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert f"resuming from {last}" in restarted.stdout

    reference_done = json.loads((run_dir(tmp_path, "reference") / "done.txt").read_text())
    resumed_done = json.loads((directory / "done.txt").read_text())
    assert resumed_done["epochs"] == reference_done["epochs"] == 2
    assert resumed_done["best_score"] == pytest.approx(reference_done["best_score"], rel=1e-5, abs=1e-7)
    assert os.path.basename(resumed_done["best_checkpoint"]) == os.path.basename(reference_done["best_checkpoint"])

    expected, got = summary(tmp_path, "reference"), summary(tmp_path, "killed")
    metrics = [k for k, v in expected.items() if "_avg_" in k and isinstance(v, float)]
    assert len(metrics) > 20
    for key in metrics:
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key
    reference_predictions = pd.read_csv(run_dir(tmp_path, "reference") / "test_predictions_Fluorescence.csv")
    resumed_predictions = pd.read_csv(directory / "test_predictions_Fluorescence.csv")
    pd.testing.assert_frame_equal(resumed_predictions, reference_predictions, rtol=1e-5, atol=1e-6)
    # the training log keeps the epoch completed before the kill (Lightning's CSV writer restarts the file)
    reference_log = pd.read_csv(run_dir(tmp_path, "reference") / "logs" / "metrics.csv")
    resumed_log = pd.read_csv(directory / "logs" / "metrics.csv")
    metric = "val_Fluorescence_mean_SpearmanR"
    per_epoch = [log.dropna(subset=[metric]).set_index("epoch")[metric] for log in (reference_log, resumed_log)]
    assert list(per_epoch[0].index) == list(per_epoch[1].index) == [0, 1]
    np.testing.assert_allclose(per_epoch[1].to_numpy(), per_epoch[0].to_numpy(), rtol=1e-5, atol=1e-6)
    assert not (directory / "logs" / "metrics.before_resume.csv").exists()
