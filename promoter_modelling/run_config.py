"""The typed, frozen configuration of one training command.

The command line is parsed once (`promoter_modelling.cli`) into a `RunConfig`; everything below
the CLI layer (planning, tasks, trainer, results, analyses) reads these objects, never an
argparse Namespace. `RunConfig.record()` gives the flat, published flag names stored with
summaries and runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from promoter_modelling.errors import InputError

TRAIN_MODES = ("min_size", "max_size_cycle", "max_size")
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "32", "16", "bf16")
LOGGERS = ("csv", "wandb")
DIRECTIONS = ("max", "min")
LOSS_SCALINGS = ("plain", "published")
FREEZE_CHOICES = ("all", "published")
INTERVALS = ("step", "epoch")
CCLE_DUPLICATE_SUMS = ("linear", "log")
SURE_SNP_CHOICES = ("complement", "published")
MALINOIS_REPEAT_CHOICES = ("per_experiment", "published")
LENTIMPRA_SPLIT_CHOICES = ("grouped", "published")
STARRSEQ_COORDINATE_CHOICES = ("bed", "published")


@dataclass(frozen=True)
class ModelChoice:
    """Backbone name, size, constructor overrides (`--backbone_kwargs`) and where pretrained
    Enformer weights are (`--enformer_path`: a local folder or hub id; None: the published hub id)."""

    name: str = "MTLucifer"
    size: str = "full"
    backbone_kwargs: Mapping[str, object] = field(default_factory=dict)
    enformer_path: str | None = None


@dataclass(frozen=True)
class PhaseHyperparameters:
    """Optimisation settings of one training phase (pretraining or the final phase)."""

    lr: float = 1e-5
    weight_decay: float = 1e-4
    batch_size: int = 96
    max_epochs: int = 50
    train_mode: str = "min_size"
    metric: str = "val_Fluorescence_mean_SpearmanR"
    direction: str = "max"

    def __post_init__(self) -> None:
        if self.train_mode not in TRAIN_MODES:
            raise InputError(f"train mode {self.train_mode!r}: expected one of {', '.join(TRAIN_MODES)}")
        if self.direction not in DIRECTIONS:
            raise InputError(f"metric direction {self.direction!r}: expected max or min")


@dataclass(frozen=True)
class TaskChoice:
    """The task names a strategy trains on (comma-separated, groups allowed)."""

    single_task: str | None = None
    joint_tasks: str | None = None
    pretrain_tasks: str | None = None
    finetune_tasks: str | None = None

    def all_specs(self) -> list[str]:
        return [s for s in (self.single_task, self.joint_tasks, self.pretrain_tasks, self.finetune_tasks) if s]


@dataclass(frozen=True)
class DataOptions:
    """Data-side choices: model input sources and the switches that restore published preprocessing.

    `sure_minus_strand_snps`: "complement" (default) complements minus-strand SNP bases; "published"
    inserts them as written. `ccle_duplicate_sum`: "linear" sums duplicated CCLE gene columns as
    TPMs; "log" sums the log values as published. `malinois_repeats`: "per_experiment" averages
    every experiment's measurement of an element; "published" first drops repeated (element,
    value) pairs across experiments. `lentimpra_undefined_split`: "grouped" splits lentiMPRA rows
    without a chromosome at random by sequence (an element and its reverse complement stay
    together); "published" row by row. `starrseq_coordinates`: "bed" reads the BED interval;
    "published" the interval shifted one base upstream."""

    shrink_test_set: bool = False
    motif_meme_file: str | None = None
    dnabert_path: str | None = None
    sure_minus_strand_snps: str = "complement"
    ccle_duplicate_sum: str = "linear"
    malinois_repeats: str = "per_experiment"
    lentimpra_undefined_split: str = "grouped"
    starrseq_coordinates: str = "bed"

    def __post_init__(self) -> None:
        if self.sure_minus_strand_snps not in SURE_SNP_CHOICES:
            raise InputError(f"--sure_minus_strand_snps {self.sure_minus_strand_snps!r}: expected complement or "
                             "published")
        if self.ccle_duplicate_sum not in CCLE_DUPLICATE_SUMS:
            raise InputError(f"--ccle_duplicate_sum {self.ccle_duplicate_sum!r}: expected linear or log")
        for flag, value, choices in (("--malinois_repeats", self.malinois_repeats, MALINOIS_REPEAT_CHOICES),
                                     ("--lentimpra_undefined_split", self.lentimpra_undefined_split,
                                      LENTIMPRA_SPLIT_CHOICES),
                                     ("--starrseq_coordinates", self.starrseq_coordinates,
                                      STARRSEQ_COORDINATE_CHOICES)):
            if value not in choices:
                raise InputError(f"{flag} {value!r}: expected {' or '.join(choices)}")


@dataclass(frozen=True)
class TrainerOptions:
    """Lightning trainer, early stopping and checkpointing settings."""

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    num_workers: int = 0
    patience: int = 5
    save_top_k: int = 1

    def __post_init__(self) -> None:
        if str(self.precision) not in PRECISIONS:
            raise InputError(f"--precision {self.precision}: expected 32-true, 16-mixed or bf16-mixed "
                             "(or 32, 16, bf16)")
        if self.num_workers < 0:
            raise InputError(f"--num_workers must be 0 or more, got {self.num_workers}")
        if self.patience < 0:
            raise InputError(f"--patience must be 0 or more, got {self.patience}")


@dataclass(frozen=True)
class LoggingOptions:
    """Where training curves go besides the CSV log."""

    loggers: tuple[str, ...] = ("csv", "wandb")
    wandb_project: str = "promoter_modelling"
    wandb_online: bool = False

    def __post_init__(self) -> None:
        unknown = [name for name in self.loggers if name not in LOGGERS]
        if unknown:
            raise InputError(f"--loggers: unknown logger {unknown[0]!r}; expected a comma-separated list of "
                             f"{', '.join(LOGGERS)} (a CSV log is always written)")


@dataclass(frozen=True)
class ModelRecipe:
    """How the final phase's model is optimised beyond its hyperparameters.

    `linear_probing_freeze`: "all" freezes the whole backbone (eval mode), "published" only its
    promoter_* parameters. `onecycle_interval`: OneCycleLR stepping of LegNet ("epoch" as
    published). `single_task_loss`: "plain" task loss, or "published" L / (2e) + 0.5."""

    linear_probing_freeze: str = "all"
    onecycle_interval: str = "step"
    single_task_loss: str = "plain"

    def __post_init__(self) -> None:
        if self.linear_probing_freeze not in FREEZE_CHOICES:
            raise InputError(f"--linear_probing_freeze {self.linear_probing_freeze!r}: expected all or published")
        if self.onecycle_interval not in INTERVALS:
            raise InputError(f"--onecycle_interval {self.onecycle_interval!r}: expected step or epoch")
        if self.single_task_loss not in LOSS_SCALINGS:
            raise InputError(f"--single_task_loss {self.single_task_loss!r}: expected plain or published")


@dataclass(frozen=True)
class RunConfig:
    """Everything one training command asks for."""

    config_path: str
    strategy: str
    tasks: TaskChoice
    model: ModelChoice = field(default_factory=ModelChoice)
    final: PhaseHyperparameters = field(default_factory=PhaseHyperparameters)
    pretrain: PhaseHyperparameters = field(default_factory=lambda: PhaseHyperparameters(
        metric="overall_val_loss", direction="min"))
    data: DataOptions = field(default_factory=DataOptions)
    trainer: TrainerOptions = field(default_factory=TrainerOptions)
    logging: LoggingOptions = field(default_factory=LoggingOptions)
    recipe: ModelRecipe = field(default_factory=ModelRecipe)
    num_seeds: int = 1
    data_split_seeds: bool = False
    use_existing_models: bool = False
    overwrite: bool = False
    name_suffix: str | None = None
    script: str = "train_models"
    flags: Mapping[str, object] = field(default_factory=dict)  # the command line as given, for records

    def __post_init__(self) -> None:
        for flag, value in (("--num_random_seeds", self.num_seeds), ("--max_epochs", self.final.max_epochs),
                            ("--batch_size", self.final.batch_size),
                            ("--pretrain_max_epochs", self.pretrain.max_epochs),
                            ("--pretrain_batch_size", self.pretrain.batch_size)):
            if value < 1:
                raise InputError(f"{flag} must be at least 1, got {value}")
        single = self.tasks.single_task
        if single and "," in single:
            raise InputError(f"--single_task takes one task, got {single!r}; to train on several together use "
                             f"--modelling_strategy joint --joint_tasks {single}")

    def record(self) -> dict:
        """JSON-ready record of the run settings: the flags as given plus the resolved options."""
        resolved = asdict(self)
        resolved.pop("flags")
        return {**dict(self.flags), "resolved": resolved}
