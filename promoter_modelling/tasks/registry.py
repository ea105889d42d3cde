"""Task names accepted on the command line -> data module classes (imported lazily).

Adding a task: write its module on tasks/base.py (declaring OPTIONS, INPUT_KINDS and
run_options) and add one line to TASKS (or GROUPS when one name stands for several data modules).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from promoter_modelling.errors import InputError
from promoter_modelling.tasks.base import LoaderSettings, TaskContext, TaskDataModule


@dataclass(frozen=True)
class TaskEntry:
    module: str
    cls: str
    kwargs: dict = field(default_factory=dict)


_FLUO = "promoter_modelling.tasks.fluorescence"
TASKS: dict[str, TaskEntry] = {
    "FluorescenceData": TaskEntry(_FLUO, "FluorescenceData"),
    "FluorescenceData_DE": TaskEntry(_FLUO, "FluorescenceData", {"predict_de": True}),
    "FluorescenceData_JURKAT": TaskEntry(_FLUO, "FluorescenceData", {"cells": ["JURKAT"]}),
    "FluorescenceData_K562": TaskEntry(_FLUO, "FluorescenceData", {"cells": ["K562"]}),
    "FluorescenceData_THP1": TaskEntry(_FLUO, "FluorescenceData", {"cells": ["THP1"]}),
    "FluorescenceData_classification": TaskEntry(_FLUO, "FluorescenceClassificationData"),
    "LL100": TaskEntry("promoter_modelling.tasks.rnaseq", "LL100"),
    "CCLE": TaskEntry("promoter_modelling.tasks.rnaseq", "CCLE"),
    "Roadmap": TaskEntry("promoter_modelling.tasks.rnaseq", "Roadmap"),
    "ENCODETFChIPSeq": TaskEntry("promoter_modelling.tasks.encode", "ENCODETFChIPSeq"),
    "Sharpr_MPRA": TaskEntry("promoter_modelling.tasks.sharpr", "SharprMPRA"),
    "Malinois_MPRA": TaskEntry("promoter_modelling.tasks.malinois", "MalinoisMPRA"),
    "lentiMPRA": TaskEntry("promoter_modelling.tasks.lentimpra", "LentiMPRA"),
    "STARRSeq": TaskEntry("promoter_modelling.tasks.starrseq", "STARRSeq"),
}
_SURE_GENOMES = ("SuRE42_HG02601", "SuRE43_GM18983", "SuRE44_HG01241", "SuRE45_HG03464")
for _kind in ("classification", "regression"):
    for _genome in _SURE_GENOMES:
        TASKS[f"SuRE_{_kind}_{_genome}"] = TaskEntry("promoter_modelling.tasks.sure", "SuRE",
                                                     {"genome_id": _genome, "kind": _kind})

# Names that stand for several data modules.
GROUPS: dict[str, list[str]] = {
    "RNASeq": ["LL100", "CCLE", "Roadmap"],
    "SuRE_classification": [f"SuRE_classification_{g}" for g in _SURE_GENOMES],
    "SuRE_regression": [f"SuRE_regression_{g}" for g in _SURE_GENOMES],
}


# Names with a number in them: Malinois_MPRA_subsampled_<N> trains on N elements.
SUBSAMPLED_MALINOIS = re.compile(r"Malinois_MPRA_subsampled_([0-9]+)")


def task_entry(name: str) -> TaskEntry | None:
    """The registry entry of one (not group) task name, or None."""
    entry = TASKS.get(name)
    if entry is None and (match := SUBSAMPLED_MALINOIS.fullmatch(name)):
        entry = TaskEntry(TASKS["Malinois_MPRA"].module, TASKS["Malinois_MPRA"].cls,
                          {"n_train_subsample": int(match.group(1))})
    return entry


def register(name: str, entry: TaskEntry) -> None:
    """Add a task name (used by plug-ins and tests)."""
    TASKS[name] = entry


def task_names() -> list[str]:
    """Every name accepted by --*_tasks flags (besides Malinois_MPRA_subsampled_<N>)."""
    return sorted(set(TASKS) | set(GROUPS))


def expand_task_names(spec: str | list[str] | None) -> list[str]:
    """'RNASeq,FluorescenceData' -> ['LL100', 'CCLE', 'Roadmap', 'FluorescenceData']."""
    if spec is None:
        return []
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    out: list[str] = []
    for name in names:
        if name in GROUPS:
            out.extend(GROUPS[name])
        elif task_entry(name) is not None:
            out.append(name)
        else:
            raise InputError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return out


def is_fluorescence_task(name: str) -> bool:
    return name.startswith("FluorescenceData")


def task_class(name: str) -> type[TaskDataModule]:
    """The data module class of one (already expanded) task name."""
    entry = task_entry(name)
    if entry is None:
        raise InputError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return getattr(importlib.import_module(entry.module), entry.cls)


def check_options(name: str, options: Mapping[str, object]) -> None:
    """Refuse an option the task does not declare, naming task and option."""
    declared = task_class(name).OPTIONS
    for option in options:
        if option not in declared:
            raise InputError(f"task {name}: option {option!r} does not apply to it (its options: "
                             f"{', '.join(declared) or 'none'})")


def check_input_kind(name: str, model_name: str, input_kind: str) -> None:
    """Refuse a task that cannot give the model its inputs, naming task and model."""
    served = task_class(name).INPUT_KINDS
    if input_kind not in served:
        raise InputError(f"task {name} cannot serve {model_name}: the model reads {input_kind} inputs, the task "
                         f"provides {' or '.join(served)} only")


def build_task(name: str, data_dir: str, loader: LoaderSettings | None = None, **options) -> TaskDataModule:
    """Instantiate one (already expanded) task by name.

    Parameters
    ----------
    name : a task name of the registry (not a group).
    data_dir : the data root (`root_data_dir`).
    loader : batch size, workers, seed and test-set shrinking (default LoaderSettings()).
    **options : task options; each must be one the task declares (`OPTIONS`).

    Returns
    -------
    The task's data module (not yet prepared), with `options` recording what it was given.
    """
    check_options(name, options)
    entry = task_entry(name)
    loader = loader or LoaderSettings()
    module = task_class(name)(data_dir, batch_size=loader.batch_size, num_workers=loader.num_workers,
                              seed=loader.seed, shrink_test_set=loader.shrink_test_set, **{**entry.kwargs, **options})
    module.task_name = name
    module.options = dict(options)
    return module


def build_tasks(spec: str | list[str], data_dir: str, loader: LoaderSettings,
                context: TaskContext) -> list[TaskDataModule]:
    """Instantiate every task named in `spec` (groups expanded) for a run.

    Parameters
    ----------
    spec : comma-separated task names or a list of them (groups such as RNASeq allowed).
    data_dir : the data root.
    loader : batch settings shared by the tasks.
    context : the model and data switches; each task takes exactly the options its
        `run_options` derives from them (the published settings for that model).

    Returns
    -------
    One data module per task. A task that cannot serve the model's input kind fails at once with
    a one-line InputError naming task and model.
    """
    names = expand_task_names(spec)
    for name in names:
        check_input_kind(name, context.model_name, context.recipe.kind)
    return [build_task(name, data_dir, loader, **task_class(name).run_options(context)) for name in names]
