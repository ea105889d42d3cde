"""Options travel from the command line to tasks, models and checkpoints.

- every README command x every backbone builds its tasks through the path the scripts use
  (`planning.plan` -> `training.make_tasks`), and each task gets the published settings for that
  model (RNA-seq always z-scored; fluorescence z-scored for DNABERT and motif models only);
- a task that cannot serve a model's inputs fails at once, in one line, before any work;
- checkpoints carry the input recipe: `predict` reads sequences as training did, without flags;
- the published-behaviour switches reach the tasks and the loss.
"""

from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from promoter_modelling import cli
from promoter_modelling.backbones.registry import backbone_class, backbone_names
from promoter_modelling.checkpoints import load_model
from promoter_modelling.cli.train_args import parse_train_args
from promoter_modelling.config import load_paths
from promoter_modelling.errors import InputError
from promoter_modelling.planning import plan
from promoter_modelling.tasks.registry import build_task
from promoter_modelling.training import make_tasks, resolve_recipe
from tests.test_readme_commands import readme_commands

NON_ONEHOT_SERVERS = {"FluorescenceData", "FluorescenceData_DE", "FluorescenceData_JURKAT", "FluorescenceData_K562",
                      "FluorescenceData_THP1", "FluorescenceData_classification"}


def expected_options(task: str, kind: str, split_seed: int | None, snps: str = "complement",
                     ccle: str = "linear") -> dict:
    """The published train_models.py settings per task and model input kind, written out here
    independently of the tasks' own `run_options`."""
    if task.startswith("FluorescenceData"):
        options = {"split_seed": split_seed}
        if task != "FluorescenceData_classification":  # labels are never z-scored
            options["zscore"] = kind != "onehot"  # FluorescenceData_DNABERT / _with_motifs default
        return options
    if task in ("LL100", "Roadmap"):
        return {"zscore": True}
    if task == "CCLE":
        return {"zscore": True, "duplicate_sum": ccle}
    if task.startswith("SuRE_"):
        return {"complement_minus_snps": snps == "complement"}
    return {}  # ENCODETFChIPSeq, Sharpr_MPRA


@pytest.fixture(scope="module")
def empty_config(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("plumbing")
    meme = root / "motifs.meme"
    from promoter_modelling.fixtures.motifs import demo_meme_motifs, meme_text

    meme.write_text(meme_text(demo_meme_motifs()))
    path = root / "config.json"
    path.write_text(json.dumps({"root_dir": str(root / "results"), "root_data_dir": str(root / "data")}))
    return str(path)


def _meme(config_path: str) -> str:
    return os.path.join(os.path.dirname(config_path), "motifs.meme")


@pytest.mark.parametrize("model", backbone_names())
def test_every_readme_strategy_builds_published_task_options(empty_config, model):
    kind = backbone_class(model).input_kind
    paths = load_paths(empty_config)
    recipe = None
    checked = 0
    for script, argv in readme_commands():
        splits = script.startswith("train_models_with_different")
        config = parse_train_args(argv + ["--config_path", empty_config, "--model_name", model, "--model_size", "tiny",
                                          "--motif_meme_file", _meme(empty_config)], splits_script=splits)
        recipe = recipe or resolve_recipe(config, paths)
        for phase in plan(config):
            for seed in (0, 1):
                names = phase.tasks.split(",")
                if kind != "onehot" and not set(names) <= NON_ONEHOT_SERVERS:
                    with pytest.raises(InputError, match=f"cannot serve {model}") as info:
                        make_tasks(phase, config, paths, seed, recipe)
                    assert "\n" not in str(info.value)
                    continue
                tasks = make_tasks(phase, config, paths, seed, recipe)
                split_seed = seed if (splits and phase.num_seeds > 1 and not phase.is_pretrain) else None
                for task in tasks:
                    given = {k: v for k, v in task.options.items() if k != "input_recipe"}
                    assert given == expected_options(task.task_name, kind, split_seed), (script, task.task_name)
                    if "input_recipe" in task.options:
                        assert task.options["input_recipe"].kind == kind
                    checked += 1
    assert checked > 60


def test_published_switches_reach_the_tasks(empty_config):
    paths = load_paths(empty_config)
    config = parse_train_args(["--config_path", empty_config, "--modelling_strategy", "joint", "--joint_tasks",
                               "RNASeq,SuRE_classification,FluorescenceData", "--sure_minus_strand_snps", "published",
                               "--ccle_duplicate_sum", "log", "--model_size", "tiny"])
    tasks = make_tasks(plan(config)[0], config, paths, 0, resolve_recipe(config, paths))
    for task in tasks:
        given = {k: v for k, v in task.options.items() if k != "input_recipe"}
        assert given == expected_options(task.task_name, "onehot", None, snps="published", ccle="log")


def test_an_option_a_task_does_not_declare_is_refused(tmp_path):
    with pytest.raises(InputError, match="task LL100: option 'complement_minus_snps' does not apply"):
        build_task("LL100", str(tmp_path), complement_minus_snps=True)
    with pytest.raises(InputError, match="task FluorescenceData_classification: option 'zscore' does not apply"):
        build_task("FluorescenceData_classification", str(tmp_path), zscore=True)


@pytest.mark.parametrize("model", ["DNABERT", "MotifBasedFCN"])
def test_joint_run_with_rnaseq_fails_at_once_in_one_line(empty_config, model, capsys):
    root = json.load(open(empty_config))["root_dir"]
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--config_path", empty_config, "--model_name", model, "--model_size", "tiny",
                  "--modelling_strategy", "joint", "--joint_tasks", "RNASeq,FluorescenceData",
                  "--motif_meme_file", _meme(empty_config)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: task LL100 cannot serve {model}: the model reads "
                   f"{backbone_class(model).input_kind} inputs, the task provides onehot only")
    assert not os.path.exists(os.path.join(root, "saved_models"))  # nothing trained or downloaded


# --- the recipe in the checkpoint ------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_non_onehot(tmp_path_factory, fluorescence_data_dir):
    """A MotifBasedFCN-tiny trained with a non-default MEME file and a DNABERT-tiny, one epoch each."""
    from promoter_modelling.strategies import run_strategy

    root = tmp_path_factory.mktemp("recipes")
    meme = root / "my_motifs.meme"
    shutil.copy(os.path.join(fluorescence_data_dir, "demo_motifs.meme"), meme)
    config = root / "config.json"
    config.write_text(json.dumps({"root_dir": str(root / "results"), "root_data_dir": fluorescence_data_dir}))
    out = {}
    for model in ("MotifBasedFCN", "DNABERT"):
        summary = run_strategy(parse_train_args([
            "--config_path", str(config), "--model_name", model, "--model_size", "tiny", "--modelling_strategy",
            "single_task", "--single_task", "FluorescenceData", "--max_epochs", "1", "--batch_size", "64",
            "--loggers", "csv", "--lr", "1e-3", "--motif_meme_file", str(meme)]))[0]
        run = summary["runs"][0]
        done = json.load(open(os.path.join(root, "results", "saved_models", run, "default", "done.txt")))
        out[model] = done["best_checkpoint"]
    return {"checkpoints": out, "meme": str(meme), "data_dir": fluorescence_data_dir}


@pytest.mark.parametrize("model", ["MotifBasedFCN", "DNABERT"])
def test_predict_reads_sequences_as_training_did_without_flags(trained_non_onehot, model, tmp_path):
    from promoter_modelling.inference import predict_inputs
    from promoter_modelling.predict import predict_sequences
    from promoter_modelling.tasks.inputs import (
        count_motif_hits,
        kmer_tokens,
        load_kmer_vocab,
        motif_parameters,
        read_motifs,
    )

    checkpoint = trained_non_onehot["checkpoints"][model]
    data_dir = trained_non_onehot["data_dir"]
    model_obj = load_model(checkpoint)
    task = build_task("FluorescenceData", data_dir, input_recipe=model_obj.input_recipe,
                      zscore=True)  # as training built it for this model
    task.prepare()
    table = task.split_table("test")
    sequences = table["sequence"].tolist()[:40]
    training_inputs = np.asarray(task.test_dataset.x[:40])
    # independent computation of what training fed the model
    if model == "MotifBasedFCN":
        expected = count_motif_hits(sequences, read_motifs(trained_non_onehot["meme"]), **motif_parameters({}))
    else:
        tokenizer = os.path.join(data_dir, "common", "dnabert_6mer_tokenizer")
        expected = kmer_tokens(sequences, load_kmer_vocab(tokenizer))
    np.testing.assert_array_equal(training_inputs, expected)
    moved = tmp_path / "elsewhere.meme"
    if model == "MotifBasedFCN":  # the motif file need not stay where it was
        shutil.move(trained_non_onehot["meme"], moved)
    try:
        np.testing.assert_array_equal(model_obj.input_recipe.model_inputs(sequences), expected)
        frame = predict_sequences(checkpoint, sequences)
    finally:
        if model == "MotifBasedFCN":
            shutil.move(moved, trained_non_onehot["meme"])
    direct = predict_inputs(model_obj, expected, batch_size=64, device="cpu", heads=["Fluorescence"])["Fluorescence"]
    np.testing.assert_allclose(frame[["pred_JURKAT", "pred_K562", "pred_THP1"]].to_numpy(), direct, rtol=1e-5,
                               atol=1e-6)


def test_checkpoint_records_task_options_and_split_seed(trained_non_onehot):
    recipe = load_model(trained_non_onehot["checkpoints"]["MotifBasedFCN"]).input_recipe
    assert recipe.kind == "motif_counts" and recipe.meme_file == os.path.abspath(trained_non_onehot["meme"])
    assert recipe.task_options == {"FluorescenceData": {"split_seed": None, "zscore": True}}
    assert recipe.split_seed is None
    assert len(recipe.motifs.names) == 8


# --- the single-task loss switch --------------------------------------------------------------------

def test_published_single_task_loss_is_the_fixed_log_variance():
    from promoter_modelling.lightning_module import MultiTaskModule
    from promoter_modelling.tasks.registry import build_task as make

    head = make("FluorescenceData", "unused").head.to_dict()
    torch.manual_seed(0)
    batch = {"x": torch.randint(0, 4, (8, 250), dtype=torch.uint8), "y": torch.randn(8, 3)}
    plain = MultiTaskModule([head], model_size="tiny", seed=0)
    published = MultiTaskModule([head], model_size="tiny", seed=0, single_task_loss="published")
    published.load_state_dict(plain.state_dict())
    plain.eval()
    published.eval()
    loss_plain, raw, _ = plain.task_loss(plain.head_specs[0], batch)
    loss_published, _, _ = published.task_loss(published.head_specs[0], batch)
    assert torch.isclose(loss_plain, raw)
    assert math.isclose(float(loss_published), float(raw) / (2 * math.e) + 0.5, rel_tol=1e-5)
    config = parse_train_args(["--modelling_strategy", "single_task", "--single_task", "FluorescenceData",
                               "--single_task_loss", "published"])
    assert config.recipe.single_task_loss == "published"
