"""Shared pieces of the analysis scripts: which trained models a command names, where results
go, and the fluorescence sequences and measurements analysed."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from promoter_modelling import runs
from promoter_modelling.config import Paths
from promoter_modelling.errors import InputError

if TYPE_CHECKING:
    from promoter_modelling.strategies import Phase


def final_phase(args: argparse.Namespace) -> Phase:
    """The phase whose models a strategy finally produces (`strategies.plan`'s last phase): its run
    name without seed suffix (`name_format`), `num_seeds` (1 for pretraining) and the `direction`
    of the metric that chose its checkpoints. Missing task flags raise plan's InputError."""
    from promoter_modelling.strategies import plan

    return plan(args)[-1]


@dataclass(frozen=True)
class SeedModel:
    """One trained model of a run: run name, checkpoint path and its validation score."""

    run: str
    checkpoint: str
    score: float


def seed_models(paths: Paths, base_name: str, num_seeds: int, direction: str,
                data_split_seeds: bool = False) -> list[SeedModel]:
    """Best checkpoint of every seed's run (`<name>_seed_k`, or `<name>_dl_seed_k` for models of the
    data-split script). Pretraining runs have a single seed."""
    found = []
    for seed in range(max(1, num_seeds)):
        run = runs.seed_run_name(base_name, seed, num_seeds, data_split_seeds)
        checkpoint, score = runs.best_checkpoint_with_score(paths.root_dir, run, direction)
        found.append(SeedModel(run, checkpoint, score))
    return found


def best_seed_model(models: list[SeedModel], direction: str) -> SeedModel:
    """The seed whose checkpoint has the best validation score (the published choice)."""
    scored = [m for m in models if np.isfinite(m.score)]
    if not scored:
        return models[0]
    return (max if direction == "max" else min)(scored, key=lambda m: m.score)


def output_dir(paths: Paths, kind: str) -> str:
    """`<root_dir>/<kind>` (created)."""
    path = os.path.join(paths.root_dir, kind)
    os.makedirs(path, exist_ok=True)
    return path


def fluorescence_data(paths: Paths, task_name: str = "FluorescenceData") -> tuple[pd.DataFrame, np.ndarray]:
    """Every promoter of a fluorescence task (train, val and test, as published): its table
    (`merged`, with the measured cells and split flags) and uint8 codes (N, 250)."""
    from promoter_modelling.tasks.registry import build_task, is_fluorescence_task

    if not is_fluorescence_task(task_name):
        raise InputError(f"{task_name!r} is not a fluorescence task (FluorescenceData, FluorescenceData_K562, ...)")
    task = build_task(task_name, paths.root_data_dir)
    task.prepare()
    codes = np.array(task.full_dataset.x, dtype=np.uint8)  # a writable copy of the memory-mapped cache
    return task.merged.reset_index(drop=True), codes


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by the analysis scripts beyond the training ones."""
    parser.add_argument("--data_split_seeds", action="store_true",
                        help="use the models of train_models_with_different_fluorescence_data_splits.py "
                             "(runs named <name>_dl_seed_k)")
    parser.add_argument("--device", default="auto", help="auto (GPU when present) | cpu | cuda")


def resolve_device(name: str):
    """torch device for --device."""
    import torch

    if name == "auto":
        from promoter_modelling.inference import default_device

        return default_device()
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device is available")
    return torch.device(name)
