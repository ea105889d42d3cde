"""The simple-regression strategies: the Lasso pipeline, the plasmid construct, features from the
pretrained backbone (not a fresh one, as the published code did), caching and reuse."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from promoter_modelling import runs
from promoter_modelling import sequence as seqlib
from promoter_modelling.backbones.registry import build_backbone
from promoter_modelling.checkpoints import backbone_state
from promoter_modelling.cli import parse_train_args
from promoter_modelling.demo_data import generate
from promoter_modelling.errors import InputError
from promoter_modelling.recipe import InputRecipe
from promoter_modelling.run_config import DataOptions
from promoter_modelling.sequence import codes_to_one_hot
from promoter_modelling.simple_regression import ALPHAS, backbone_features, fit_output
from promoter_modelling.strategies import run_strategy
from promoter_modelling.tasks.base import LoaderSettings, TaskContext
from promoter_modelling.tasks.construct import CONSTRUCT_LENGTH, DOWNSTREAM, UPSTREAM
from promoter_modelling.tasks.registry import build_task

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = ["--model_size", "tiny", "--loggers", "csv", "--batch_size", "64"]


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("simple_regression")
    generate(str(root / "data"), ["FluorescenceData"], seed=0, num_sequences=600)
    path = root / "config.json"
    path.write_text(json.dumps({"root_dir": str(root / "results"), "root_data_dir": str(root / "data")}))
    return str(path)


def test_lasso_pipeline_recovers_a_sparse_linear_signal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 40)).astype(np.float32) * rng.uniform(0.1, 10, size=40).astype(np.float32)
    weights = np.zeros(40, np.float32)
    weights[[3, 17, 29]] = [2.0, -1.0, 0.5]
    y = (x / x.std(axis=0)) @ weights + rng.normal(scale=0.1, size=600).astype(np.float32)
    pipeline, _ = fit_output(x[:400], y[:400], x[400:500], y[400:500])
    search = pipeline.named_steps["lasso"]
    assert search.best_params_["alpha"] in ALPHAS
    # the chosen alpha is the one with the best validation R2 among the grid
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["alpha"] == ALPHAS[int(np.argmax(scores))]
    pred = pipeline.predict(x[500:])
    assert np.corrcoef(pred, y[500:])[0, 1] > 0.99
    coef = pipeline.named_steps["lasso"].best_estimator_.coef_
    assert set(np.flatnonzero(np.abs(coef) > 0.05)) == {3, 17, 29}


def test_fluorescence_simple_regression_reads_promoters_in_the_plasmid(config_path):
    data_dir = json.load(open(config_path))["root_data_dir"]
    context = TaskContext("MTLucifer", InputRecipe(), DataOptions(), simple_regression=True)
    plain = build_task("FluorescenceData", data_dir, LoaderSettings(batch_size=32))
    options = type(plain).run_options(context)
    assert options["use_construct"] is True
    wrapped = build_task("FluorescenceData", data_dir, LoaderSettings(batch_size=32), **options)
    assert CONSTRUCT_LENGTH == 1177 and wrapped.input_length() == 1177 and plain.input_length() == 250
    x, x_plain = np.asarray(wrapped.test_dataset.x), np.asarray(plain.test_dataset.x)
    np.testing.assert_array_equal(x[:, 20:270], x_plain)
    np.testing.assert_array_equal(x[:, :20], np.broadcast_to(seqlib.encode([UPSTREAM])[0], (len(x), 20)))
    np.testing.assert_array_equal(x[:, 270:], np.broadcast_to(seqlib.encode([DOWNSTREAM])[0], (len(x), 907)))


def test_backbone_features_are_written_batch_by_batch(tmp_path):
    torch.manual_seed(0)
    backbone = build_backbone("MTLucifer", "tiny")
    codes = seqlib.encode(["".join(np.random.default_rng(1).choice(list("ACGT"), 60)) for _ in range(10)])
    features = backbone_features(backbone, codes, 4, str(tmp_path / "f.npy"), device=torch.device("cpu"))
    with torch.no_grad():
        expected = backbone.eval()(codes_to_one_hot(torch.as_tensor(codes)))
    assert features.shape == (10, backbone.embed_dims)
    np.testing.assert_allclose(features, expected.numpy(), atol=1e-5)
    assert os.listdir(tmp_path) == ["f.npy"]


def test_pretrain_then_simple_regression_uses_the_pretrained_backbone(config_path, capsys):
    argv = ["--modelling_strategy", "pretrain+simple_regression", "--pretrain_tasks", "FluorescenceData_JURKAT",
            "--finetune_tasks", "FluorescenceData", "--pretrain_max_epochs", "1", "--pretrain_lr", "1e-3",
            "--config_path", config_path, *TINY]
    summaries = run_strategy(parse_train_args(argv))
    root = json.load(open(config_path))["root_dir"]
    name = "simple_regression_on_FluorescenceData_pretrained_on_FluorescenceData_JURKAT_tiny"
    assert summaries[-1]["modelling_strategy"] == "pretrain+simple_regression"
    record = json.load(open(os.path.join(runs.run_dir(root, name), "test_metrics.json")))
    assert set(record["simple_regression"]) == {"JURKAT", "K562", "THP1"}
    assert np.isfinite(record["metrics"]["JURKAT_PearsonR"])
    features = np.load(record["features"])
    assert os.path.basename(os.path.dirname(record["features"])) == f"{name}_unified_cache"

    # the features are those of the pretraining run's best backbone, on the promoters in their plasmid
    checkpoint = runs.best_checkpoint(root, "pretrain_on_FluorescenceData_JURKAT_tiny", "min")
    pretrained = build_backbone("MTLucifer", "tiny")
    pretrained.load_state_dict(backbone_state(checkpoint))
    data_dir = json.load(open(config_path))["root_data_dir"]
    task = build_task("FluorescenceData", data_dir, LoaderSettings(batch_size=64), use_construct=True)
    task.prepare()
    inputs = np.asarray(task.full_dataset.x[:50])
    with torch.no_grad():
        onehot = codes_to_one_hot(torch.as_tensor(inputs))
        expected = pretrained.eval()(onehot).numpy()
        fresh = build_backbone("MTLucifer", "tiny").eval()(onehot).numpy()
    np.testing.assert_allclose(features[:50], expected, atol=1e-4)
    assert not np.allclose(features[:50], fresh, atol=1e-2)
    assert len(features) == len(task.merged)
    assert os.path.exists(os.path.join(runs.checkpoint_dir(root, name), "Fluorescence_K562_predictor.joblib"))

    # run again with --use_existing_models: the finished run and its metrics are reused
    capsys.readouterr()
    again = run_strategy(parse_train_args(argv + ["--use_existing_models"]))
    assert "finished earlier: reusing" in capsys.readouterr().out
    assert again[-1]["JURKAT_avg_PearsonR"] == summaries[-1]["JURKAT_avg_PearsonR"]


def test_simple_regression_refuses_several_tasks(config_path):
    argv = ["--modelling_strategy", "single_task_simple_regression", "--single_task", "RNASeq",
            "--config_path", config_path, *TINY]
    with pytest.raises(InputError, match="fits one task, got 3"):
        run_strategy(parse_train_args(argv))


@pytest.mark.parametrize("argv, message", [
    (["--model_name", "Malinois", "--modelling_strategy", "joint", "--joint_tasks", "FluorescenceData,Malinois_MPRA"],
     "Malinois predicts the outputs of one task (one branch per output), but this run names 2: FluorescenceData, "
     "Malinois_MPRA; train it on one task at a time"),
    (["--model_name", "EnformerFullFrozenBase", "--modelling_strategy", "single_task", "--single_task",
      "FluorescenceData"],
     "EnformerFullFrozenBase is a fixed feature extractor without a trainable head: use --modelling_strategy "
     "single_task_simple_regression or pretrain+simple_regression"),
    (["--model_name", "Malinois", "--modelling_strategy", "pretrain+finetune", "--pretrain_tasks", "RNASeq",
      "--finetune_tasks", "FluorescenceData"],
     "Malinois predicts the outputs of one task (one branch per output), but pretraining names 3: LL100, CCLE, "
     "Roadmap; train it on one task at a time"),
])
def test_models_that_cannot_train_as_asked_fail_before_any_work(config_path, argv, message, capsys):
    from promoter_modelling.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv, "--config_path", config_path, *TINY])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_enformer_without_its_package_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "enformer_pytorch", None)
    with pytest.raises(InputError, match=r"^the Enformer backbones need enformer-pytorch: pip install --no-deps "
                                         r"enformer-pytorch==0\.8\.12$"):
        build_backbone("EnformerRandomInit", "tiny")


def test_enformer_path_reaches_the_model_through_the_training_script(config_path, tmp_path, capsys):
    from promoter_modelling.cli import main

    missing = str(tmp_path / "no_enformer_here")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model_name", "Enformer", "--modelling_strategy", "single_task", "--single_task",
              "FluorescenceData", "--enformer_path", missing, "--config_path", config_path, "--loggers", "csv"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: Enformer folder {missing!r} does not exist; download the hub repository "
        "EleutherAI/enformer-official-rough (config.json and pytorch_model.bin) into a folder and pass "
        "--enformer_path <folder>")
