"""Pretraining on an assay that shares the planted motif grammar helps the small target assay."""

from __future__ import annotations

import json

import numpy as np

from promoter_modelling.cli import parse_train_args
from promoter_modelling.fixtures import fluorescence, sharpr
from promoter_modelling.fixtures.motifs import demo_meme_motifs, meme_text
from promoter_modelling.strategies import run_strategy

COMMON = ["--model_size", "tiny", "--lr", "3e-3", "--weight_decay", "1e-4", "--batch_size", "32",
          "--max_epochs", "6", "--patience", "6", "--num_random_seeds", "1", "--loggers", "csv"]
PRETRAIN = ["--pretrain_tasks", "Sharpr_MPRA", "--pretrain_lr", "3e-3", "--pretrain_batch_size", "64",
            "--pretrain_max_epochs", "4"]
MARGIN = 0.05  # mean test Pearson r over the three cells


def test_pretrain_finetune_beats_single_task_on_a_small_target(tmp_path):
    data = tmp_path / "data"
    fluorescence.generate(str(data), np.random.default_rng(11), num_sequences=350, single_class=True)
    sharpr.generate(str(data), np.random.default_rng(12), num_train=6000, num_val=400, num_test=200)
    (data / "demo_motifs.meme").write_text(meme_text(demo_meme_motifs()))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"root_dir": str(tmp_path / "results"), "root_data_dir": str(data)}))
    base = ["--config_path", str(config)] + COMMON
    single = run_strategy(parse_train_args(base + ["--modelling_strategy", "single_task",
                                                   "--single_task", "FluorescenceData"]))[-1]
    transfer = run_strategy(parse_train_args(base + ["--modelling_strategy", "pretrain+finetune",
                                                     "--finetune_tasks", "FluorescenceData"] + PRETRAIN))[-1]
    cells = ("JURKAT", "K562", "THP1")
    single_r = np.mean([single[f"{c}_avg_PearsonR"] for c in cells])
    transfer_r = np.mean([transfer[f"{c}_avg_PearsonR"] for c in cells])
    assert transfer_r > single_r + MARGIN, (single_r, transfer_r)
