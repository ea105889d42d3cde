"""What a trained run was trained with, recorded beside it, and the check before it is reused.

`run_settings.json` holds the settings that change the model (backbone, tasks, seed,
hyperparameters, the published-behaviour switches, the pretrained run it started from, the
input recipe) and a fingerprint of every task's data. A run is reused or resumed only when both
match what is asked; otherwise the command stops with one line saying what differs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict

from promoter_modelling import runs
from promoter_modelling.errors import InputError
from promoter_modelling.planning import Phase
from promoter_modelling.recipe import InputRecipe
from promoter_modelling.run_config import RunConfig

FORMAT = 1


def _plain(value: object) -> object:
    """JSON-normal form (tuples become lists), so a record compares equal to its reloaded copy."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _file_digest(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]


def recorded_task_options(tasks: list) -> dict:
    """The options each task was built with, by task name (the input recipe, recorded on its own, left out)."""
    return {t.task_name: {k: v for k, v in t.options.items() if not isinstance(v, InputRecipe)} for t in tasks}


def run_settings(phase: Phase, config: RunConfig, seed: int, recipe: InputRecipe, tasks: list,
                 root_dir: str) -> dict:
    """The record of one seed's run of a phase."""
    model = config.model
    settings = {
        "model": {"name": model.name, "size": model.size, "backbone_kwargs": dict(model.backbone_kwargs)},
        "tasks": phase.tasks,
        "seed": seed,
        "split_seed": phase.split_seed(seed),
        **{k: v for k, v in asdict(phase.hyper).items()},
        "patience": config.trainer.patience,
        "freeze": phase.freeze,
        "onecycle_interval": config.recipe.onecycle_interval,
        "single_task_loss": config.recipe.single_task_loss,
        "pretrained_from": phase.init_from,
        "pretrained_settings": (_file_digest(runs.settings_path(root_dir, phase.init_from))
                                if phase.init_from else None),
        "inputs": recipe.identity(),
        "task_options": recorded_task_options(tasks),
    }
    data = {t.task_name: t.data_fingerprint() for t in tasks}
    return _plain({"format": FORMAT, "settings": settings, "data": data})


def differences(recorded: dict, asked: dict) -> list[str]:
    """Human-readable differences between a recorded run and what is asked now."""
    out = []
    old, new = recorded.get("settings", {}), asked["settings"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(f"{key} {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}")
    old_data, new_data = recorded.get("data", {}), asked["data"]
    for task in sorted(set(old_data) | set(new_data)):
        if old_data.get(task) != new_data.get(task):
            out.append(f"the data of {task} changed" if task in old_data and task in new_data
                       else f"task {task} {'added' if task in new_data else 'removed'}")
    return out


def check_reusable(root_dir: str, run_name: str, asked: dict) -> None:
    """Refuse, in one line, to reuse or resume a run trained with other settings or data.

    A run without a record (trained by the published code, or before records were kept) is
    reused as found, with a notice."""
    path = runs.settings_path(root_dir, run_name)
    if not os.path.exists(path):
        print(f"[{run_name}] no record of its settings (an older or published run): reusing it as found")
        return
    try:
        with open(path, encoding="utf-8") as handle:
            recorded = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable run record ({exc}); retrain without --use_existing_models "
                         "(the run is kept as a version) or with --overwrite") from exc
    found = differences(recorded, asked)
    if found:
        shown = "; ".join(found[:4]) + (f"; and {len(found) - 4} more" if len(found) > 4 else "")
        raise InputError(f"run {run_name} was trained with other settings or data ({shown}); run without "
                         "--use_existing_models to retrain it (the earlier run is kept as a version), or with "
                         "--overwrite to replace it")
