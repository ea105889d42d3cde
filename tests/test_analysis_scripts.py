"""The published README commands of the three analysis scripts, run verbatim (as subprocesses)
on tiny models trained on fixture data. Only --config_path and --model_size tiny are appended;
`all_motifs.meme` is a generated file in the working directory."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from promoter_modelling.fixtures.motifs import DECOY_MOTIFS, PLANTED_MOTIFS, consensus_pwm, meme_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = {
    "insertion_finetune": "python perform_motif_insertion_analysis.py --modelling_strategy pretrain+finetune "
                          "--pretrain_tasks SuRE_classification,Sharpr_MPRA --finetune_tasks FluorescenceData "
                          "--num_random_seeds 5 --num_motif_insertions_per_sequence 10 --meme_file all_motifs.meme "
                          "--batch_size 2048",
    "attended_finetune": "python get_motifs_attended_to_by_model.py --modelling_strategy pretrain+finetune "
                         "--pretrain_tasks SuRE_classification,Sharpr_MPRA --finetune_tasks FluorescenceData",
    "insertion_single": "python perform_motif_insertion_analysis.py --modelling_strategy single_task --single_task "
                        "FluorescenceData --num_random_seeds 5 --num_motif_insertions_per_sequence 10 "
                        "--meme_file all_motifs.meme --batch_size 2048",
    "attended_single": "python get_motifs_attended_to_by_model.py --modelling_strategy single_task "
                       "--single_task FluorescenceData",
    "transfer_sure_sharpr": "python eval_transfer_performance.py --modelling_strategy pretrain --pretrain_tasks "
                            "SuRE_classification,Sharpr_MPRA --output_inds_to_compare \"-1,0,-1 -1,2,-1\"",
    "transfer_rnaseq": "python eval_transfer_performance.py --modelling_strategy pretrain --pretrain_tasks RNASeq "
                       "--output_inds_to_compare \"30,34,89 983,544,143 -1,54,-1\"",
}
TRAINING = [  # the models the commands need, trained small and fast
    ["--modelling_strategy", "single_task", "--single_task", "FluorescenceData", "--num_random_seeds", "5"],
    ["--modelling_strategy", "pretrain+finetune", "--pretrain_tasks", "SuRE_classification,Sharpr_MPRA",
     "--finetune_tasks", "FluorescenceData", "--num_random_seeds", "5"],
    ["--modelling_strategy", "pretrain", "--pretrain_tasks", "RNASeq"],
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> str:
    """A working directory with config.json, all_motifs.meme and the trained tiny models."""
    from promoter_modelling.cli.train_args import parse_train_args
    from promoter_modelling.demo_data import generate
    from promoter_modelling.fixtures import rnaseq, sharpr, sure
    from promoter_modelling.fixtures.genome import ensure_genome
    from promoter_modelling.strategies import run_strategy

    root = tmp_path_factory.mktemp("analysis_scripts")
    data = str(root / "data")
    generate(data, ["FluorescenceData"], seed=0, num_sequences=500)
    ensure_genome(data, "hg19", 30_000)  # small fixture genomes keep the pretraining short
    ensure_genome(data, "hg38", 30_000)
    sure.generate(data, np.random.default_rng(1), fragments_per_file=40)
    sharpr.generate(data, np.random.default_rng(2), num_train=400, num_val=60, num_test=60)
    # Enough cell lines for the published output indices (LL100 89, CCLE 983, Roadmap 54).
    rnaseq.generate(data, np.random.default_rng(3), num_ll100_cells=100, num_ccle_cells=1000)
    config = root / "config.json"
    config.write_text(json.dumps({"root_dir": str(root / "results"), "root_data_dir": data}))
    pwms = {"RUNX_like RUNX1[planted]": consensus_pwm(PLANTED_MOTIFS["RUNX_like"][0]),
            "GATA_like": consensus_pwm(PLANTED_MOTIFS["GATA_like"][0]),
            "HOMER_SPI1_like": consensus_pwm(PLANTED_MOTIFS["SPI1_like"][0]),
            "DECOY_1": consensus_pwm(DECOY_MOTIFS["DECOY_1"])}
    (root / "all_motifs.meme").write_text(meme_text(pwms))
    common = ["--config_path", str(config), "--model_size", "tiny", "--max_epochs", "1", "--pretrain_max_epochs", "1",
              "--batch_size", "128", "--pretrain_batch_size", "64", "--loggers", "csv"]
    for flags in TRAINING:
        run_strategy(parse_train_args(flags + common))
    return str(root)


def run_readme(workdir: str, key: str, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    words = shlex.split(COMMANDS[key])
    assert words[0] == "python"
    argv = [sys.executable, os.path.join(REPO, words[1])] + words[2:]
    argv += ["--config_path", os.path.join(workdir, "config.json"), "--model_size", "tiny"] + (extra or [])
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": REPO,
           "PROMOTER_MODELLING_GDRIVE_URL": "http://127.0.0.1:9/{id}"}  # the published Drive files: unreachable
    return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_commands_are_the_readme_commands():
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    for command in COMMANDS.values():
        assert command in readme, command


@pytest.mark.parametrize("kind, name", [("single", "individual_training_on_FluorescenceData_tiny"),
                                        ("finetune", "finetune_on_FluorescenceData_pretrained_on_"
                                                     "SuRE_classification+Sharpr_MPRA_tiny")])
def test_insertion_then_attended(workdir, kind, name):
    out = ok(run_readme(workdir, f"insertion_{kind}"))
    prefix = os.path.join(workdir, "results", "motif_insertion_analysis", name)
    effects = pd.read_csv(f"{prefix}_motif_effects.tsv", sep="\t")
    assert len(effects) == 4 * 3 and set(effects["cell"]) == {"JURKAT", "K562", "THP1"}
    assert set(effects["motif"]) == {"RUNX_like", "GATA_like", "HOMER_SPI1_like", "DECOY_1"}
    assert [f"mean_effect_seed_{k}" in effects for k in range(5)] == [True] * 5
    meta = json.load(open(f"{prefix}_motif_insertion.json"))
    assert len(meta["runs"]) == 5 and meta["parameters"]["num_motif_insertions_per_sequence"] == 10
    per_sequence = pd.read_parquet(f"{prefix}_per_sequence_effects.parquet")
    assert len(per_sequence) == 4 * meta["num_sequences"]
    for suffix in ("effects_heatmap.png", "top_motifs.png"):
        assert os.path.getsize(f"{prefix}_{suffix}") > 0
    assert "that raise expression most" in out

    again = ok(run_readme(workdir, f"insertion_{kind}"))
    assert "results for these models and parameters exist" in again  # reused, not recomputed

    out = ok(run_readme(workdir, f"attended_{kind}"))
    assert "dropping 1 HOMER motifs" in out
    assert "the comparison with measured dFE is skipped" in out
    summary = pd.read_csv(f"{prefix}_summary.tsv", sep="\t")
    assert set(summary["motif"]) == {"RUNX_like", "GATA_like", "DECOY_1"}
    assert {f"{c}_avg_pred" for c in ("JURKAT", "K562", "THP1")} <= set(summary.columns)
    specific = pd.read_csv(f"{prefix}_cell_specific_motifs.tsv", sep="\t")
    # only motifs significant against their shuffled versions are listed: 1-epoch models may have none
    assert set(specific["direction"]) <= {"up", "down"}
    assert {"cell", "direction", "rank", "motif", "effect_vs_null", "q_value_vs_null"} <= set(specific.columns)
    assert {"q_value_vs_null", "effect_vs_null", "regulation"} <= set(effects.columns)
    assert "Up-regulating motifs common to all cells: none" in out or os.path.getsize(
        f"{prefix}_common_upreg_motifs.png") > 0


def test_insertion_recomputes_when_a_checkpoint_changes(workdir):
    """Saved results are reused only while the checkpoints are unchanged: a checkpoint rewritten at
    the same path (a retrained model; here its mtime moves) forces a recomputation."""
    ok(run_readme(workdir, "insertion_single"))
    meta_path = os.path.join(workdir, "results", "motif_insertion_analysis",
                             "individual_training_on_FluorescenceData_tiny_motif_insertion.json")
    meta = json.load(open(meta_path))
    again = ok(run_readme(workdir, "insertion_single"))
    assert "results for these models and parameters exist" in again  # unchanged: reused
    checkpoint = meta["parameters"]["checkpoints"][0]
    stat = os.stat(checkpoint)
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    after = ok(run_readme(workdir, "insertion_single"))
    assert "results for these models and parameters exist" not in after  # recomputed
    assert "that raise expression most" in after
    assert json.load(open(meta_path))["fingerprint"] != meta["fingerprint"]


def test_transfer_sure_sharpr(workdir):
    out = ok(run_readme(workdir, "transfer_sure_sharpr"))
    table = pd.read_csv(os.path.join(workdir, "results", "transfer_performance",
                                     "pretrain_on_SuRE_classification+Sharpr_MPRA_tiny_on_FluorescenceData.csv"))
    assert list(table["head_group"]) == ["SuRE_classification", "Sharpr_MPRA"]
    assert list(table["head_output_index"]) == [0, 2] and set(table["evaluated_output"]) == {"K562"}
    assert "PearsonR between K562_bin_expected and K562" in out


def test_transfer_rnaseq(workdir):
    ok(run_readme(workdir, "transfer_rnaseq"))
    table = pd.read_csv(os.path.join(workdir, "results", "transfer_performance",
                                     "pretrain_on_RNASeq_tiny_on_FluorescenceData.csv"))
    assert list(table["head_group"]) == ["LL100"] * 3 + ["CCLE"] * 3 + ["Roadmap"]
    assert list(table["head_output_index"]) == [30, 34, 89, 983, 544, 143, 54]
    assert np.isfinite(table["pearson_r"]).all()


def test_wrong_output_inds_fail_with_one_line(workdir):
    result = run_readme(workdir, "transfer_sure_sharpr", ["--output_inds_to_compare=-1,0,-1"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: --output_inds_to_compare has 1 group(s) but the model has 2 head group(s)")
