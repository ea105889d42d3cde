"""Planning a strategy: which phases it trains, on which tasks, under which run names.

Pure functions of a `RunConfig`: nothing is read or written. A strategy is one or two phases
(pretraining first, trained once with one seed and reused by every fine-tune/probe that names
the same pretraining tasks), each phase trained for every seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from promoter_modelling import runs
from promoter_modelling.errors import InputError
from promoter_modelling.run_config import PhaseHyperparameters, RunConfig

_FLAGS = {"single_task": "--single_task", "joint_tasks": "--joint_tasks", "pretrain_tasks": "--pretrain_tasks",
          "finetune_tasks": "--finetune_tasks"}


@dataclass(frozen=True)
class Phase:
    """One training phase of a strategy.

    `name_format` is the run name without seed suffix; `init_from` the run whose best checkpoint
    initialises the backbone (chosen in `init_direction`); `freeze` the linear-probing mode."""

    name_format: str
    tasks: str
    hyper: PhaseHyperparameters
    num_seeds: int
    is_pretrain: bool = False
    init_from: str | None = None
    init_direction: str = "min"
    freeze: str | None = None
    data_split_seeds: bool = False
    simple_regression: bool = False  # fixed backbone features + Lasso per output, nothing trained by gradient

    @property
    def metric(self) -> str:
        return self.hyper.metric

    @property
    def direction(self) -> str:
        return self.hyper.direction

    def run_name(self, seed: int) -> str:
        """The run name of one seed (`_seed_k`, or `_dl_seed_k` for data-split runs, when several)."""
        return runs.seed_run_name(self.name_format, seed, self.num_seeds, self.data_split_seeds)

    def split_seed(self, seed: int) -> int | None:
        """Fluorescence split seed of a seed's run: k for data-split runs of several seeds, else None (97)."""
        return seed if (self.data_split_seeds and self.num_seeds > 1) else None


def _require(config: RunConfig, *fields: str) -> None:
    missing = [_FLAGS[f] for f in fields if not getattr(config.tasks, f)]
    if missing:
        raise InputError(f"--modelling_strategy {config.strategy} needs {' and '.join(missing)}")


def plan(config: RunConfig) -> list[Phase]:
    """Phases that carry out `config.strategy`, pretraining first."""
    strategy, tasks, model = config.strategy, config.tasks, config.model
    common = dict(model_name=model.name, model_size=model.size, suffix=config.name_suffix)
    final = dict(hyper=config.final, num_seeds=config.num_seeds, data_split_seeds=config.data_split_seeds)
    if strategy in ("single_task", "single_task_simple_regression"):
        _require(config, "single_task")
        return [Phase(runs.name_format(strategy, single_task=tasks.single_task, **common), tasks.single_task,
                      simple_regression=strategy != "single_task", **final)]
    if strategy == "joint":
        _require(config, "joint_tasks")
        return [Phase(runs.name_format(strategy, joint_tasks=tasks.joint_tasks, **common), tasks.joint_tasks, **final)]
    if strategy not in runs.STRATEGIES:
        raise InputError(f"unknown modelling strategy {strategy!r}; expected one of {', '.join(runs.STRATEGIES)}")
    _require(config, "pretrain_tasks")
    pretrain = Phase(runs.pretrain_name(model.name, tasks.pretrain_tasks, model.size), tasks.pretrain_tasks,
                     config.pretrain, num_seeds=1, is_pretrain=True)
    if strategy == "pretrain":
        return [pretrain]
    _require(config, "finetune_tasks")
    name = runs.name_format(strategy, pretrain_tasks=tasks.pretrain_tasks, finetune_tasks=tasks.finetune_tasks,
                            **common)
    freeze = config.recipe.linear_probing_freeze if strategy == "pretrain+linear_probing" else None
    finetune = Phase(name, tasks.finetune_tasks, init_from=pretrain.name_format, init_direction=pretrain.direction,
                     freeze=freeze, simple_regression=strategy == "pretrain+simple_regression", **final)
    return [pretrain, finetune]


# Data switches that only one family of tasks reads: flag, its default, does a task name read it.
TASK_SWITCHES = (
    ("--malinois_repeats", "malinois_repeats", "per_experiment", lambda name: name.startswith("Malinois_MPRA")),
    ("--lentimpra_undefined_split", "lentimpra_undefined_split", "grouped", lambda name: name == "lentiMPRA"),
    ("--starrseq_coordinates", "starrseq_coordinates", "bed", lambda name: name == "STARRSeq"),
    ("--sure_minus_strand_snps", "sure_minus_strand_snps", "complement", lambda name: name.startswith("SuRE")),
    ("--ccle_duplicate_sum", "ccle_duplicate_sum", "linear", lambda name: name == "CCLE"),
)


def flag_notices(config: RunConfig) -> list[str]:
    """One line per flag of the command that some (or every) task of the run does not apply,
    instead of ignoring it silently."""
    from promoter_modelling.tasks.registry import expand_task_names, task_class

    phases = plan(config)
    names = [name for phase in phases for name in expand_task_names(phase.tasks)]
    notes = []
    if config.data.shrink_test_set:
        whole = [name for phase in phases for name in dict.fromkeys(expand_task_names(phase.tasks))
                 if not task_class(name).shrinks_test_set(phase.is_pretrain)]
        if whole:
            notes.append(f"--shrink_test_set does not apply to {', '.join(dict.fromkeys(whole))}: their val/test sets "
                         "are used whole (as published; Malinois_MPRA is cut only as a pretraining task)")
    n = config.flags.get("n_train_subsample")
    if n is not None and n != 15000 and not config.flags.get("subsample_train_set"):
        notes.append("--n_train_subsample has no effect without --subsample_train_set")
    for flag, attribute, default, reads in TASK_SWITCHES:
        if getattr(config.data, attribute) != default and not any(reads(name) for name in names):
            notes.append(f"{flag} has no effect: no task of this run reads it")
    return notes


def final_phase(config: RunConfig) -> Phase:
    """The phase whose models a strategy finally produces (what the analyses evaluate)."""
    return plan(config)[-1]
