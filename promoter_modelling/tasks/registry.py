"""Task names accepted on the command line -> data module classes (imported lazily).

Adding a task: write its module on tasks/base.py and add one line to TASKS (or GROUPS when
one name stands for several data modules).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from promoter_modelling.errors import InputError
from promoter_modelling.tasks.base import TaskDataModule


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


def register(name: str, entry: TaskEntry) -> None:
    """Add a task name (used by plug-ins and tests)."""
    TASKS[name] = entry


def task_names() -> list[str]:
    """Every name accepted by --*_tasks flags."""
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
        elif name in TASKS:
            out.append(name)
        else:
            raise InputError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return out


def is_fluorescence_task(name: str) -> bool:
    return name.startswith("FluorescenceData")


def build_task(name: str, data_dir: str, **kwargs) -> TaskDataModule:
    """Instantiate one (already expanded) task by name."""
    entry = TASKS.get(name)
    if entry is None:
        raise InputError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    cls = getattr(importlib.import_module(entry.module), entry.cls)
    module = cls(data_dir, **{**entry.kwargs, **kwargs})
    module.task_name = name
    return module


def build_tasks(spec: str | list[str], data_dir: str, **kwargs) -> list[TaskDataModule]:
    """Instantiate every task named in `spec` (groups expanded). Keyword arguments a task's
    constructor does not take are dropped for that task."""
    import inspect

    modules = []
    for name in expand_task_names(spec):
        entry = TASKS[name]
        cls = getattr(importlib.import_module(entry.module), entry.cls)
        accepted = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
        kept = {k: v for k, v in kwargs.items() if takes_any or k in accepted}
        modules.append(build_task(name, data_dir, **kept))
    return modules
