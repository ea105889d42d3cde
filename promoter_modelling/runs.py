"""Run names and where a run's files live.

Names follow the published scheme so existing result folders stay recognisable:
`[<model>_]individual_training_on_<tasks>`, `joint_train_on_<tasks>`, `pretrain_on_<tasks>`,
`finetune_on_<tasks>_pretrained_on_<tasks>`, `linear_probing_on_<tasks>_pretrained_on_<tasks>`
(tasks joined by "+", the model prefix omitted for MTLucifer), then `_<optional_name_suffix>`,
then `_seed_<k>` when several seeds are trained (`_dl_seed_<k>` in the data-split script).
"""

from __future__ import annotations

import json
import math
import os
import re

from promoter_modelling.errors import InputError

STRATEGIES = ("single_task", "joint", "pretrain", "pretrain+finetune", "pretrain+linear_probing",
              "single_task_simple_regression", "pretrain+simple_regression")
SPLITS_SCRIPT = "train_models_with_different_fluorescence_data_splits"  # the script recorded with its runs


def _join(tasks: str) -> str:
    return "+".join(t.strip() for t in tasks.split(",") if t.strip())


def model_prefix(model_name: str) -> str:
    return "" if model_name == "MTLucifer" else f"{model_name}_"


def pretrain_name(model_name: str, pretrain_tasks: str, model_size: str = "full") -> str:
    """Name of the pretraining run shared by every fine-tune/probe that uses the same tasks."""
    return f"{model_prefix(model_name)}pretrain_on_{_join(pretrain_tasks)}{size_suffix(model_size)}"


def size_suffix(model_size: str) -> str:
    """Non-published sizes get their own run names so they never mix with full-size results."""
    return "" if model_size == "full" else f"_{model_size}"


def name_format(strategy: str, model_name: str, *, single_task: str | None = None, joint_tasks: str | None = None,
                pretrain_tasks: str | None = None, finetune_tasks: str | None = None, suffix: str | None = None,
                model_size: str = "full") -> str:
    """Run name without the seed suffix for the final (non-pretraining) phase of a strategy."""
    if strategy == "single_task":
        base = f"individual_training_on_{_join(single_task)}"
    elif strategy == "joint":
        base = f"joint_train_on_{_join(joint_tasks)}"
    elif strategy == "pretrain":
        return pretrain_name(model_name, pretrain_tasks, model_size)
    elif strategy == "pretrain+finetune":
        base = f"finetune_on_{_join(finetune_tasks)}_pretrained_on_{_join(pretrain_tasks)}"
    elif strategy == "pretrain+linear_probing":
        base = f"linear_probing_on_{_join(finetune_tasks)}_pretrained_on_{_join(pretrain_tasks)}"
    elif strategy == "single_task_simple_regression":
        base = f"simple_regression_on_{_join(single_task)}"
    elif strategy == "pretrain+simple_regression":
        base = f"simple_regression_on_{_join(finetune_tasks)}_pretrained_on_{_join(pretrain_tasks)}"
    else:
        raise InputError(f"unknown modelling strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    name = f"{model_prefix(model_name)}{base}{size_suffix(model_size)}"
    return f"{name}_{suffix}" if suffix else name


def seed_run_name(base: str, seed: int, num_seeds: int, data_split_seeds: bool = False) -> str:
    if num_seeds <= 1:
        return base
    return f"{base}_dl_seed_{seed}" if data_split_seeds else f"{base}_seed_{seed}"


def run_dir(root_dir: str, run_name: str) -> str:
    """Directory of one trained model (published layout: saved_models/<name>/default)."""
    return os.path.join(root_dir, "saved_models", run_name, "default")


def checkpoint_dir(root_dir: str, run_name: str) -> str:
    return os.path.join(run_dir(root_dir, run_name), "checkpoints")


def summaries_dir(root_dir: str) -> str:
    path = os.path.join(root_dir, "summaries")
    os.makedirs(path, exist_ok=True)
    return path


_METRIC_IN_NAME = re.compile(r"=(-?[0-9.]+(?:e[-+]?\d+)?)(?:-v\d+)?\.ckpt$")


def best_checkpoint_with_score(root_dir: str, run_name: str, direction: str = "max") -> tuple[str, float]:
    """Best checkpoint of a finished run and its validation score, from one read of done.txt.

    The checkpoint recorded in done.txt comes with its recorded score (else the score in its file
    name, else NaN); without a recorded checkpoint that exists, the best of the file names
    (`best-epoch=07-<metric>=0.61234[-vN].ckpt`) with the score in that name."""
    done = os.path.join(run_dir(root_dir, run_name), "done.txt")
    if os.path.exists(done):
        recorded = score = None
        try:
            with open(done, encoding="utf-8") as handle:
                record = json.load(handle)
            recorded, score = record.get("best_checkpoint"), record.get("best_score")
        except (json.JSONDecodeError, AttributeError):
            pass
        if recorded and os.path.exists(recorded):
            return recorded, _recorded_score(score, recorded)
    directory = checkpoint_dir(root_dir, run_name)
    candidates = []
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            match = _METRIC_IN_NAME.search(name)
            if name.startswith("best") and match:
                candidates.append((float(match.group(1)), name))
    if not candidates:
        raise InputError(f"no trained model found for run {run_name!r} in {directory}")
    chooser = max if direction == "max" else min
    score, name = chooser(candidates)
    return os.path.join(directory, name), score


def _recorded_score(score, checkpoint: str) -> float:
    """done.txt's best_score when it is a finite number, else the score in the checkpoint's name, else NaN."""
    try:
        if score is not None and math.isfinite(float(score)):
            return float(score)
    except (TypeError, ValueError):
        pass
    match = _METRIC_IN_NAME.search(os.path.basename(checkpoint))
    return float(match.group(1)) if match else float("nan")


def best_checkpoint(root_dir: str, run_name: str, direction: str = "max") -> str:
    """Best checkpoint of a finished run: recorded in done.txt, else parsed from file names
    (`best-epoch=07-<metric>=0.61234[-vN].ckpt`)."""
    return best_checkpoint_with_score(root_dir, run_name, direction)[0]


def is_finished(root_dir: str, run_name: str) -> bool:
    return os.path.exists(os.path.join(run_dir(root_dir, run_name), "done.txt"))


def run_root(root_dir: str, run_name: str) -> str:
    """`saved_models/<run>`: the current run (`default/`) and earlier versions set aside beside it."""
    return os.path.join(root_dir, "saved_models", run_name)


def lock_path(root_dir: str, run_name: str) -> str:
    """The lock file held while a process trains or evaluates the run."""
    return os.path.join(run_root(root_dir, run_name), ".lock")


def settings_path(root_dir: str, run_name: str) -> str:
    """`run_settings.json`: what the run was trained with (settings and data fingerprints)."""
    return os.path.join(run_dir(root_dir, run_name), "run_settings.json")


def set_aside(root_dir: str, run_name: str) -> str:
    """Move the run's `default/` folder to the next free `version_<k>/` beside it; returns the new path."""
    source = run_dir(root_dir, run_name)
    k = 0
    while os.path.exists(os.path.join(run_root(root_dir, run_name), f"version_{k}")):
        k += 1
    target = os.path.join(run_root(root_dir, run_name), f"version_{k}")
    _remove_dead_temporaries(source)
    os.replace(source, target)
    return target


_TEMPORARY = re.compile(r"\.(.+)\.\d+\.[0-9a-f]{8}-[0-9a-f]{12}.*\.part(\.download)?")


def _remove_dead_temporaries(folder: str) -> None:
    """Temporary files left in a run by killed writers go before the run is set aside (nothing would
    write their destinations there again); those of live processes stay."""
    from promoter_modelling.download import remove_stale_temporaries

    for base, _, files in os.walk(folder):
        for name in files:
            match = _TEMPORARY.fullmatch(name)
            if match:
                remove_stale_temporaries(os.path.join(base, match.group(1)))
