"""Shared pieces of the analysis scripts: which trained models a command names, where results
go, and the fluorescence sequences and measurements analysed."""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from promoter_modelling import runs
from promoter_modelling.config import Paths
from promoter_modelling.errors import InputError

_SCORE_IN_NAME = re.compile(r"=(-?[0-9.]+(?:e[-+]?\d+)?)(?:-v\d+)?\.ckpt$")


def final_name(args: argparse.Namespace) -> str:
    """Run name (without seed suffix) of the model a strategy finally produces."""
    if args.modelling_strategy == "single_task" and not args.single_task:
        raise InputError("--modelling_strategy single_task needs --single_task")
    if args.modelling_strategy == "joint" and not args.joint_tasks:
        raise InputError("--modelling_strategy joint needs --joint_tasks")
    if args.modelling_strategy.startswith("pretrain") and not args.pretrain_tasks:
        raise InputError(f"--modelling_strategy {args.modelling_strategy} needs --pretrain_tasks")
    if args.modelling_strategy in ("pretrain+finetune", "pretrain+linear_probing") and not args.finetune_tasks:
        raise InputError(f"--modelling_strategy {args.modelling_strategy} needs --finetune_tasks")
    return runs.name_format(args.modelling_strategy, args.model_name, single_task=args.single_task,
                            joint_tasks=args.joint_tasks, pretrain_tasks=args.pretrain_tasks,
                            finetune_tasks=args.finetune_tasks, suffix=args.optional_name_suffix,
                            model_size=args.model_size)


def metric_direction(args: argparse.Namespace) -> str:
    """Direction of the metric that chose the checkpoints of the strategy's final phase."""
    if args.modelling_strategy == "pretrain":
        return args.pretrain_metric_direction_which_is_optimal
    return args.metric_direction_which_is_optimal


@dataclass(frozen=True)
class SeedModel:
    """One trained model of a run: run name, checkpoint path and its validation score."""

    run: str
    checkpoint: str
    score: float


def checkpoint_score(root_dir: str, run: str, checkpoint: str) -> float:
    """Validation score of a run's best checkpoint: from done.txt, else from the file name."""
    done = os.path.join(runs.run_dir(root_dir, run), "done.txt")
    if os.path.exists(done):
        try:
            with open(done, encoding="utf-8") as handle:
                score = json.load(handle).get("best_score")
            if score is not None and np.isfinite(float(score)):
                return float(score)
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            pass
    match = _SCORE_IN_NAME.search(os.path.basename(checkpoint))
    return float(match.group(1)) if match else float("nan")


def seed_models(paths: Paths, base_name: str, num_seeds: int, direction: str,
                data_split_seeds: bool = False) -> list[SeedModel]:
    """Best checkpoint of every seed's run (`<name>_seed_k`, or `<name>_dl_seed_k` for models of the
    data-split script). Pretraining runs have a single seed."""
    found = []
    for seed in range(max(1, num_seeds)):
        run = runs.seed_run_name(base_name, seed, num_seeds, data_split_seeds)
        checkpoint = runs.best_checkpoint(paths.root_dir, run, direction)
        found.append(SeedModel(run, checkpoint, checkpoint_score(paths.root_dir, run, checkpoint)))
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
