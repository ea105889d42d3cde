"""Zero-shot transfer evaluation: head grouping, SuRE expected bins, the --output_inds_to_compare
format, correlations, and the script on a checkpoint written without training."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from promoter_modelling import runs
from promoter_modelling.analysis import transfer
from promoter_modelling.cli.analysis_args import transfer_main
from promoter_modelling.errors import InputError
from promoter_modelling.heads import GROUPED_MULTICLASS, REGRESSION, HeadSpec

GENOMES = ("SuRE42_HG02601", "SuRE43_GM18983", "SuRE44_HG01241", "SuRE45_HG03464")
SURE = [HeadSpec(f"SuRE_{g}", ["K562_bin", "HepG2_bin"], kind=GROUPED_MULTICLASS, num_classes=5) for g in GENOMES]
SHARPR = HeadSpec("Sharpr_MPRA", [f"out{i}" for i in range(12)], kind=REGRESSION)


def test_sure_heads_form_one_group_in_task_order():
    groups = transfer.head_groups(SURE + [SHARPR])
    assert [g.name for g in groups] == ["SuRE_classification", "Sharpr_MPRA"]
    assert [s.name for s in groups[0].specs] == [f"SuRE_{g}" for g in GENOMES]
    assert groups[0].output_names == ["K562_bin_expected", "HepG2_bin_expected"]
    rnaseq = [HeadSpec(name, ["a", "b"]) for name in ("LL100", "CCLE", "Roadmap")]
    assert [g.name for g in transfer.head_groups(rnaseq)] == ["LL100", "CCLE", "Roadmap"]


def test_sure_softmax_is_per_cell_group():
    # K562 logits favour bin 4, HepG2 logits favour bin 0, with very different scales.
    logits = np.array([[0, 0, 0, 0, 30, 10, 0, 0, 0, 0]], dtype=np.float64)
    expected = transfer.head_values(SURE[0], logits)
    np.testing.assert_allclose(expected, [[4.0, 0.0]], atol=1e-3)
    # The published softmax over all ten logits would put almost no mass on the HepG2 classes,
    # so its HepG2 expectation would not be a bin at all: per-group softmax keeps each in [0, 4].
    published = torch.softmax(torch.tensor(logits), dim=1).numpy()
    assert published[0, 5:].sum() < 1e-8
    uniform = transfer.head_values(SURE[0], np.zeros((1, 10)))
    np.testing.assert_allclose(uniform, [[2.0, 2.0]])


@pytest.mark.parametrize("text, message", [
    ("-1,0,-1", r"has 1 group\(s\) but the model has 2 head group\(s\): SuRE_classification \(2 outputs\)"),
    ("-1,0 -1,2,-1", r"group '-1,0' \(head group SuRE_classification\) has 2 entries; expected one per"),
    ("-1,2,-1 -1,2,-1", r"index 2 is outside head group SuRE_classification's outputs 0..1"),
    ("-1,a,-1 -1,2,-1", r"entries must be integers"),
])
def test_output_inds_errors(text, message):
    groups = transfer.head_groups(SURE + [SHARPR])
    with pytest.raises(InputError, match=message):
        transfer.parse_output_inds(text, groups, ["JURKAT", "K562", "THP1"])


def test_compare_correlations_and_skips():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 3))
    groups = transfer.head_groups([HeadSpec("H", ["a", "b"])])
    predictions = {"H": np.stack([y[:, 1], -y[:, 2] ** 3], axis=1)}
    table, panels = transfer.compare(predictions, groups, y, ["JURKAT", "K562", "THP1"], [[-1, 0, 1]])
    assert list(table["evaluated_output"]) == ["K562", "THP1"] and len(panels) == 2
    np.testing.assert_allclose(table["pearson_r"].iloc[0], 1.0)
    np.testing.assert_allclose(table["spearman_rho"].iloc[1], -1.0)  # monotone but not linear
    assert table["pearson_r"].iloc[1] > -1.0


def _write_checkpoint(root: str, run: str, heads: list[HeadSpec], metric: str = "overall_val_loss",
                      score: float = 1.5) -> str:
    from promoter_modelling.lightning_module import MultiTaskModule

    torch.manual_seed(0)
    model = MultiTaskModule(heads=[h.to_dict() for h in heads], model_name="MTLucifer", model_size="tiny")
    directory = runs.checkpoint_dir(root, run)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"best-epoch=00-{metric}={score:.5f}.ckpt")
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


@pytest.fixture()
def config(tmp_path, fluorescence_data_dir) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"root_dir": str(tmp_path / "results"), "root_data_dir": fluorescence_data_dir}))
    return str(path)


def test_script_on_a_pretrained_checkpoint(tmp_path, config):
    root = str(tmp_path / "results")
    _write_checkpoint(root, "pretrain_on_SuRE_classification+Sharpr_MPRA_tiny", SURE + [SHARPR])
    out = transfer_main(["--modelling_strategy", "pretrain", "--pretrain_tasks", "SuRE_classification,Sharpr_MPRA",
                         "--output_inds_to_compare", "-1,0,-1 -1,2,-1", "--config_path", config,
                         "--model_size", "tiny"])
    table = out["table"]
    assert list(table["head_group"]) == ["SuRE_classification", "Sharpr_MPRA"]
    assert list(table["head_output"]) == ["K562_bin_expected", "out2"]
    assert (table["evaluated_output"] == "K562").all() and (table["num_sequences"] > 500).all()
    assert np.isfinite(table[["pearson_r", "spearman_rho"]].to_numpy()).all()
    written = pd.read_csv(out["table_path"])
    assert len(written) == 2 and os.path.exists(out["plot_path"])


def test_single_cell_task_and_best_seed(tmp_path, config):
    root = str(tmp_path / "results")
    name = "individual_training_on_FluorescenceData_tiny"
    fluo = HeadSpec("Fluorescence", ["JURKAT", "K562", "THP1"])
    _write_checkpoint(root, f"{name}_seed_0", [fluo], "val_Fluorescence_mean_SpearmanR", 0.2)
    best = _write_checkpoint(root, f"{name}_seed_1", [fluo], "val_Fluorescence_mean_SpearmanR", 0.6)
    out = transfer_main(["--modelling_strategy", "single_task", "--single_task", "FluorescenceData",
                         "--num_random_seeds", "2", "--task_to_evaluate", "FluorescenceData_K562",
                         "--output_inds_to_compare", "1", "--config_path", config, "--model_size", "tiny"])
    assert out["checkpoint"] == best  # highest validation Spearman across seeds
    assert list(out["table"]["evaluated_output"]) == ["K562"]
    assert list(out["table"]["head_output"]) == ["K562"]


def test_missing_model_is_a_clear_error(config):
    with pytest.raises(InputError, match=r"no trained model found for run 'pretrain_on_RNASeq_tiny'"):
        transfer_main(["--modelling_strategy", "pretrain", "--pretrain_tasks", "RNASeq", "--output_inds_to_compare",
                       "1,2,3", "--config_path", config, "--model_size", "tiny"])


def test_options_are_checked_with_one_line_errors():
    with pytest.raises(InputError, match=r"--task_to_evaluate 'Sharpr_MPRA': expected one of FluorescenceData"):
        transfer.TransferOptions("1", task_to_evaluate="Sharpr_MPRA")
    with pytest.raises(InputError, match=r"--output_inds_to_compare is empty"):
        transfer.TransferOptions("  ")
