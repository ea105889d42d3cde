"""Trained runs are never deleted or reused unless that is what was asked, and bad training flags
or configuration stop before any work with one line (exit 2)."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
import torch

from promoter_modelling import cli, runs
from promoter_modelling.cli.train_args import parse_train_args
from promoter_modelling.errors import InputError
from promoter_modelling.strategies import run_strategy
from tests.fault_helpers import hold_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = "PureCNN_individual_training_on_FluorescenceData_tiny"
FLAGS = ["--modelling_strategy", "single_task", "--single_task", "FluorescenceData", "--model_name", "PureCNN",
         "--model_size", "tiny", "--max_epochs", "1", "--batch_size", "64", "--lr", "1e-3", "--loggers", "csv"]


def make_config(root, data_dir: str) -> str:
    path = root / "config.json"
    path.write_text(json.dumps({"root_dir": str(root / "results"), "root_data_dir": data_dir}))
    return str(path)


def train(config: str, *extra: str) -> dict:
    return run_strategy(parse_train_args(FLAGS + ["--config_path", config, *extra]))[0]


def results(config: str) -> str:
    return json.load(open(config))["root_dir"]


def tree_digest(folder: str) -> dict[str, bytes]:
    """Every file below `folder` with its contents."""
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, folder)] = handle.read()
    return out


@pytest.fixture
def trained(tmp_path, fluorescence_data_dir):
    config = make_config(tmp_path, fluorescence_data_dir)
    train(config)
    return config


def test_rerun_without_reuse_keeps_the_earlier_run_as_a_version(trained, capsys):
    root = results(trained)
    before = tree_digest(runs.run_dir(root, RUN))
    train(trained)
    kept = os.path.join(runs.run_root(root, RUN), "version_0")
    assert f"kept as {kept}" in capsys.readouterr().out
    assert tree_digest(kept) == before  # moved, not changed
    assert os.path.exists(os.path.join(runs.run_dir(root, RUN), "done.txt"))
    train(trained, "--overwrite")
    assert not os.path.exists(os.path.join(runs.run_root(root, RUN), "version_1"))
    assert "--overwrite: the earlier run was deleted" in capsys.readouterr().out


def test_reuse_refuses_a_run_trained_with_other_settings(trained):
    root = results(trained)
    summary_path = os.path.join(root, "summaries", f"{RUN}.json")
    summary_before = open(summary_path).read()
    with pytest.raises(InputError) as info:
        train(trained, "--use_existing_models", "--lr", "2e-3", "--batch_size", "32")
    message = str(info.value)
    assert "\n" not in message
    assert f"run {RUN} was trained with other settings or data" in message
    assert "batch_size 64 -> 32" in message and "lr 0.001 -> 0.002" in message
    assert "--overwrite" in message and "without --use_existing_models" in message
    assert open(summary_path).read() == summary_before  # the record still describes the model
    again = train(trained, "--use_existing_models")  # the same settings: reused
    assert again["lr"] == 1e-3


def test_reuse_refuses_a_run_whose_data_changed(trained, fluorescence_data_dir, tmp_path):
    data = tmp_path / "data_copy"
    shutil.copytree(fluorescence_data_dir, data)
    os.makedirs(tmp_path / "other")
    config = make_config(tmp_path / "other", str(data))
    train(config)
    counts = data / "FluorescenceData" / "Raw_Promoter_Counts.csv"
    os.utime(counts, ns=(time.time_ns(), time.time_ns() + 10**9))  # the raw file was replaced
    with pytest.raises(InputError, match="the data of FluorescenceData changed"):
        train(config, "--use_existing_models")


def test_runs_without_a_record_are_reused_as_found(trained, capsys):
    root = results(trained)
    os.remove(runs.settings_path(root, RUN))
    train(trained, "--use_existing_models")
    assert "no record of its settings" in capsys.readouterr().out


def test_a_run_in_use_is_refused_naming_its_process(trained):
    root = results(trained)
    holder = hold_lock(runs.lock_path(root, RUN), 60)
    try:
        with pytest.raises(InputError) as info:
            train(trained)
        assert f"run {RUN} is in use by process {holder.pid} on " in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    train(trained, "--use_existing_models")  # the lock went with its process


def test_a_non_finite_loss_stops_training_unfinished(tmp_path, fluorescence_data_dir):
    from promoter_modelling.lightning_module import NonFiniteLossError

    config = make_config(tmp_path, fluorescence_data_dir)
    with pytest.raises(NonFiniteLossError, match="training loss became (nan|inf) at epoch 0"):
        train(config, "--lr", "1e30", "--max_epochs", "3")
    assert not os.path.exists(os.path.join(runs.run_dir(results(config), RUN), "done.txt"))


def test_truncated_last_checkpoint_says_which_file_to_delete(trained):
    root = results(trained)
    last = os.path.join(runs.checkpoint_dir(root, RUN), "last.ckpt")
    os.remove(os.path.join(runs.run_dir(root, RUN), "done.txt"))  # an unfinished run
    with open(last, "r+b") as handle:
        handle.truncate(os.path.getsize(last) // 2)
    with pytest.raises(InputError, match=f"{last} cannot be resumed from .*; delete it to train the run from the start"):
        train(trained, "--use_existing_models")


def test_each_trained_model_gets_its_own_wandb_run(tmp_path, fluorescence_data_dir, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = make_config(tmp_path, fluorescence_data_dir)
    train(config, "--num_random_seeds", "2", "--loggers", "csv,wandb")
    found = {}
    for seed in (0, 1):
        folder = os.path.join(runs.run_dir(results(config), f"{RUN}_seed_{seed}"), "wandb")
        found[seed] = [n for n in os.listdir(folder) if n.startswith("offline-run-")]
    assert len(found[0]) == 1 and len(found[1]) == 1
    assert found[0][0].rsplit("-", 1)[1] != found[1][0].rsplit("-", 1)[1]  # two run ids


# --- one line instead of a traceback --------------------------------------------------------------

BAD_FLAGS = [
    (["--max_epochs", "0"], "--max_epochs must be at least 1, got 0"),
    (["--num_random_seeds", "0"], "--num_random_seeds must be at least 1, got 0"),
    (["--batch_size", "0"], "--batch_size must be at least 1, got 0"),
    (["--precision", "17"], "--precision 17: expected 32-true, 16-mixed or bf16-mixed (or 32, 16, bf16)"),
    (["--loggers", "tensorboard"], "--loggers: unknown logger 'tensorboard'; expected a comma-separated list of "
                                   "csv, wandb (a CSV log is always written)"),
    (["--single_task", "FluorescenceData,Sharpr_MPRA"],
     "--single_task takes one task, got 'FluorescenceData,Sharpr_MPRA'; to train on several together use "
     "--modelling_strategy joint --joint_tasks FluorescenceData,Sharpr_MPRA"),
]


@pytest.mark.parametrize("extra, message", BAD_FLAGS, ids=[f[0][0] for f in BAD_FLAGS])
def test_bad_training_flags_stop_before_any_work(tmp_path, extra, message, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"root_dir": str(tmp_path / "results"), "root_data_dir": str(tmp_path / "data")}))
    with pytest.raises(SystemExit) as info:
        cli.main(["train", *FLAGS, "--config_path", str(config), *extra])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_asked_for_without_one(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"root_dir": str(tmp_path / "results"), "root_data_dir": str(tmp_path / "data")}))
    with pytest.raises(SystemExit):
        cli.main(["train", *FLAGS, "--config_path", str(config), "--accelerator", "gpu"])
    assert capsys.readouterr().err.strip() == ("error: --accelerator gpu: no CUDA GPU is available to PyTorch here; "
                                               "use --accelerator cpu (or auto)")


BAD_CONFIGS = [
    ("5", "config.json: expected a JSON object with root_dir and root_data_dir, got 5"),
    ('{"root_dir": null, "root_data_dir": "d"}',
     "config.json: root_dir must be a folder path (a non-empty string), got null"),
    ('{"root_dir": "", "root_data_dir": "d"}',
     'config.json: root_dir must be a folder path (a non-empty string), got ""'),
]


@pytest.mark.parametrize("text, message", BAD_CONFIGS, ids=["number", "null", "empty"])
def test_bad_config_files(tmp_path, monkeypatch, text, message, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(SystemExit):
        cli.main(["train", *FLAGS, "--config_path", "config.json"])
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_root_dir_under_a_regular_file(tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"root_dir": str(tmp_path / "a_file" / "results"), "root_data_dir": str(tmp_path)}))
    with pytest.raises(SystemExit):
        cli.main(["train", *FLAGS, "--config_path", str(config)])
    assert capsys.readouterr().err.strip() == (f"error: {config}: root_dir {tmp_path / 'a_file' / 'results'} cannot be "
                                               "created (Not a directory)")


def test_published_checkpoints_work_in_place(tmp_path, fluorescence_data_dir, capsys):
    """The published README: extract the released checkpoints under the results folder and rerun
    the command with --use_existing_models."""
    from promoter_modelling.inference import predict_inputs
    from promoter_modelling.lightning_module import MultiTaskModule
    from promoter_modelling.predict import predict_sequences
    from promoter_modelling.sequence import encode
    from promoter_modelling.tasks.registry import build_task
    from tests.test_checkpoint_import import write_published

    config = make_config(tmp_path, fluorescence_data_dir)
    torch.manual_seed(3)
    source = MultiTaskModule([build_task("FluorescenceData", "unused").head.to_dict()], model_name="PureCNN",
                             model_size="tiny").eval()
    folder = os.path.join(runs.checkpoint_dir(results(config), RUN))
    os.makedirs(folder)
    original = write_published(source, os.path.join(folder,
                                                    "best-epoch=03-val_Fluorescence_mean_SpearmanR=0.61234.ckpt"))
    with open(os.path.join(runs.run_dir(results(config), RUN), "done.txt"), "w") as handle:
        handle.write("done")
    original_bytes = open(original, "rb").read()

    summary = train(config, "--use_existing_models")
    out = capsys.readouterr().out
    imported = os.path.join(folder, "imported", os.path.basename(original))
    assert f"converting it once to {imported} (the original is kept)" in out
    assert open(original, "rb").read() == original_bytes
    table = build_task("FluorescenceData", fluorescence_data_dir)
    test = table.split_table("test")
    predicted = predict_sequences(imported, test["sequence"].tolist())
    direct = predict_inputs(source, encode(test["sequence"].tolist()), batch_size=64, device="cpu",
                            heads=["Fluorescence"])["Fluorescence"]
    np.testing.assert_allclose(predicted[["pred_JURKAT", "pred_K562", "pred_THP1"]].to_numpy(), direct, rtol=1e-5,
                               atol=1e-6)
    assert summary["runs"] == [RUN] and "JURKAT_avg_PearsonR" in summary
    train(config, "--use_existing_models")  # reused again: converted once only
    assert "converting" not in capsys.readouterr().out
