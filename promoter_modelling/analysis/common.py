"""Shared pieces of the analyses: which trained models a run configuration names, where results
go, the fluorescence sequences and measurements analysed, and the device they run on.

Nothing here reads command-line flags: the analyses take a `RunConfig` (the training flags,
parsed by `promoter_modelling.cli`) and their own options dataclass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from promoter_modelling import runs
from promoter_modelling.config import Paths
from promoter_modelling.errors import InputError

if TYPE_CHECKING:
    from promoter_modelling.planning import Phase
    from promoter_modelling.run_config import ModelChoice


@dataclass(frozen=True)
class SeedModel:
    """One trained model of a run: run name, checkpoint path and its validation score."""

    run: str
    checkpoint: str
    score: float


def phase_models(paths: Paths, phase: Phase, model: ModelChoice | None = None) -> list[SeedModel]:
    """Best checkpoint of every seed's run of a phase.

    Parameters
    ----------
    paths : the configured directories (`root_dir` holds the runs).
    phase : the phase whose models are analysed (`planning.final_phase(run)`); its run names are
        `<name>_seed_k`, or `<name>_dl_seed_k` for models of the data-split script. Pretraining
        phases have a single seed.

    Returns
    -------
    One SeedModel per seed, in seed order. A missing run raises a one-line InputError. With
    `model` (the trained backbone), a checkpoint of the published code found in place is
    converted once beside it (`checkpoints.ensure_package_checkpoint`) and that copy is returned.
    """
    from promoter_modelling.checkpoints import ensure_package_checkpoint

    found = []
    for seed in range(max(1, phase.num_seeds)):
        run = phase.run_name(seed)
        checkpoint, score = runs.best_checkpoint_with_score(paths.root_dir, run, phase.direction)
        if model is not None:
            checkpoint = ensure_package_checkpoint(checkpoint, model.name, phase.tasks, model.size,
                                                   backbone_kwargs=dict(model.backbone_kwargs) or None,
                                                   data_dir=paths.root_data_dir)
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


def fluorescence_data(paths: Paths, task_name: str = "FluorescenceData",
                      split_seed: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Every promoter of a fluorescence task (train, val and test, as published).

    Parameters
    ----------
    paths : the configured directories (`root_data_dir` holds the data).
    task_name : a fluorescence task (FluorescenceData, FluorescenceData_K562, ...).
    split_seed : seed of the train/val/test split recorded in the table's `is_<split>` columns
        (None: the published seed 97); a model's own is `model.input_recipe.split_seed`.

    Returns
    -------
    The task's table (`merged`, with the measured cells and split flags) and the promoters'
    uint8 codes (N, 250), in the same order.
    """
    from promoter_modelling.tasks.registry import build_task, is_fluorescence_task

    if not is_fluorescence_task(task_name):
        raise InputError(f"{task_name!r} is not a fluorescence task (FluorescenceData, FluorescenceData_K562, ...)")
    task = build_task(task_name, paths.root_data_dir, split_seed=split_seed)
    task.prepare()
    codes = np.array(task.full_dataset.x, dtype=np.uint8)  # a writable copy of the memory-mapped cache
    return task.merged.reset_index(drop=True), codes


def models_split_seed(models: Sequence, split: str = "all") -> int | None:
    """The fluorescence split seed the analysed models were trained on (their input recipes').

    Parameters
    ----------
    models : the loaded models (each with `input_recipe.split_seed`; None is the published 97).
    split : the split analysed; "all" needs no particular split.

    Returns
    -------
    The models' common split seed; None when they differ and `split` is "all". Models trained
    on different splits analysed on one split raise a one-line InputError.
    """
    seeds = list(dict.fromkeys(model.input_recipe.split_seed for model in models))
    if len(seeds) == 1:
        return seeds[0]
    if split == "all":
        return None
    shown = ", ".join("97 (published)" if s is None else str(s) for s in seeds)
    raise InputError(f"the analysed models were trained on different fluorescence data splits (split seeds "
                     f"{shown}), so their {split} sets differ; use --sequences_split all")


def resolve_device(name: str):
    """torch device for a device name: auto (GPU when present), cpu, cuda, cuda:k."""
    import torch

    if name == "auto":
        from promoter_modelling.inference import default_device

        return default_device()
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"--device {name}: not a device name (auto, cpu, cuda, cuda:0, ...)") from exc
