"""The training scripts' flags (those of the published train_models.py plus this package's) and
their translation into a typed `RunConfig`, done once here."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from promoter_modelling.backbones.registry import MODEL_SIZES, backbone_names
from promoter_modelling.errors import InputError
from promoter_modelling.run_config import (
    CCLE_DUPLICATE_SUMS,
    LENTIMPRA_SPLIT_CHOICES,
    LOSS_SCALINGS,
    MALINOIS_REPEAT_CHOICES,
    STARRSEQ_COORDINATE_CHOICES,
    SURE_SNP_CHOICES,
    DataOptions,
    LoggingOptions,
    ModelChoice,
    ModelRecipe,
    PhaseHyperparameters,
    RunConfig,
    TaskChoice,
    TrainerOptions,
)
from promoter_modelling.runs import SPLITS_SCRIPT, STRATEGIES
from promoter_modelling.tasks.registry import task_names


def add_train_arguments(parser: argparse.ArgumentParser, splits_script: bool = False) -> argparse.ArgumentParser:
    """Every flag of the published train_models.py, plus this package's additions."""
    tasks_help = "comma-separated task names: " + ", ".join(task_names())
    p = parser.add_argument
    p("--config_path", default="./config.json", help="JSON file with root_dir (results) and root_data_dir (data)")
    p("--model_name", default="MTLucifer", choices=backbone_names(), metavar="MODEL",
      help="backbone: " + ", ".join(backbone_names()))
    p("--model_size", default="full", choices=MODEL_SIZES,
      help="full = published architecture; small = CPU demo size; tiny = seconds, for tests")
    p("--modelling_strategy", required=True, choices=STRATEGIES, metavar="STRATEGY", help=" | ".join(STRATEGIES))
    p("--joint_tasks", default=None, help=tasks_help)
    p("--pretrain_tasks", default=None, help=tasks_help)
    p("--finetune_tasks", default=None, help=tasks_help)
    p("--single_task", default=None, help="one task name (groups such as RNASeq are expanded)")
    p("--shrink_test_set", action="store_true",
      help="keep only the first 10 val/test rows of SuRE, ENCODE and lentiMPRA (and of Malinois_MPRA when it is "
           "a pretraining task)")
    if not splits_script:
        p("--subsample_train_set", action="store_true",
          help="train on N sequences of the Malinois MPRA (Malinois_MPRA in the final tasks becomes "
               "Malinois_MPRA_subsampled_N)")
        p("--n_train_subsample", type=int, default=15000, help="N of --subsample_train_set")
    p("--lr", type=float, default=1e-5)
    p("--weight_decay", type=float, default=1e-4)
    p("--pretrain_lr", type=float, default=1e-5)
    p("--pretrain_weight_decay", type=float, default=1e-4)
    p("--batch_size", type=int, default=96)
    p("--pretrain_batch_size", type=int, default=96)
    p("--max_epochs", type=int, default=50)
    p("--pretrain_max_epochs", type=int, default=50)
    p("--train_mode", default="min_size", choices=("min_size", "max_size_cycle", "max_size"))
    p("--pretrain_train_mode", default="min_size", choices=("min_size", "max_size_cycle", "max_size"))
    p("--num_random_seeds", type=int, default=1,
      help="models trained per run" + (" (seed k also re-draws the fluorescence split)" if splits_script else ""))
    p("--use_existing_models", action="store_true",
      help="reuse finished runs and resume unfinished ones from their last checkpoint (only when they were "
           "trained with the same settings and data)")
    p("--overwrite", action="store_true",
      help="delete an earlier run of the same name instead of keeping it as saved_models/<run>/version_<k> "
           "(motif insertion: recompute even when results for the same inputs exist)")
    p("--wandb_project_name", default="promoter_modelling")
    p("--wandb_online", action="store_true", help="sync to Weights & Biases (default: offline files only)")
    p("--loggers", default="csv,wandb", help="comma-separated: csv, wandb")
    p("--metric_to_monitor", default="val_Fluorescence_mean_SpearmanR")
    p("--metric_direction_which_is_optimal", default="max", choices=("max", "min"))
    p("--pretrain_metric_to_monitor", default="overall_val_loss")
    p("--pretrain_metric_direction_which_is_optimal", default="min", choices=("max", "min"))
    p("--patience", type=int, default=5)
    p("--save_top_k", type=int, default=1)
    p("--optional_name_suffix", default=None)
    p("--fasta_shuffle_letters_path", default="fasta_shuffle_letters",
      help="accepted for compatibility; dinucleotide shuffles are done in Python")
    p("--linear_probing_freeze", default="all", choices=("all", "published"),
      help="all: freeze the whole backbone in eval mode; published: freeze only promoter_* parameters")
    p("--onecycle_interval", default="step", choices=("step", "epoch"),
      help="LegNet OneCycleLR stepping (published: epoch)")
    p("--single_task_loss", default="plain", choices=LOSS_SCALINGS,
      help="single-task loss: plain, or published (fixed log-variance 1: L/(2e) + 0.5 for regression)")
    p("--sure_minus_strand_snps", default="complement", choices=SURE_SNP_CHOICES,
      help="SuRE minus-strand SNP bases: complement them, or insert them as written (published)")
    p("--ccle_duplicate_sum", default="linear", choices=CCLE_DUPLICATE_SUMS,
      help="CCLE gene columns of one Ensembl id: summed as TPMs (linear), or as log values (log, published)")
    p("--malinois_repeats", default="per_experiment", choices=MALINOIS_REPEAT_CHOICES,
      help="Malinois MPRA: average every experiment's value of an element (per_experiment), or drop repeated "
           "(element, value) pairs first (published)")
    p("--lentimpra_undefined_split", default="grouped", choices=LENTIMPRA_SPLIT_CHOICES,
      help="lentiMPRA rows without a chromosome: split by sequence, an element with its reverse complement "
           "(grouped), or row by row (published)")
    p("--starrseq_coordinates", default="bed", choices=STARRSEQ_COORDINATE_CHOICES,
      help="STARR-seq peak sequences: the BED interval (bed), or shifted one base upstream (published)")
    p("--dnabert_path", default=None,
      help="DNABERT weights and tokenizer: local folder or hub id (default zhihan1996/DNA_bert_6)")
    p("--enformer_path", default=None,
      help="pretrained Enformer weights (Enformer, EnformerFrozenBase, EnformerFullFrozenBase at size full): a "
           "local folder with config.json and pytorch_model.bin or model.safetensors, or a hub id (default "
           "EleutherAI/enformer-official-rough)")
    p("--motif_meme_file", default=None, help="MEME file scanned for MotifBasedFCN inputs")
    p("--backbone_kwargs", type=json.loads, default=None, help="JSON dict overriding backbone constructor arguments")
    p("--num_workers", type=int, default=0, help="DataLoader worker processes")
    p("--accelerator", default="auto", help="auto | cpu | gpu")
    p("--devices", default="auto", help="number of devices per node, or auto")
    p("--num_nodes", type=int, default=1)
    p("--strategy", default="auto", help="Lightning strategy, e.g. ddp")
    p("--precision", default="16-mixed" if splits_script else "32-true",
      help="32-true | 16-mixed | bf16-mixed (mixed precision only on GPU)")
    return parser


def parse_train_args(argv: list[str] | None = None, splits_script: bool = False) -> RunConfig:
    """Parse training flags into the run configuration.

    Parameters
    ----------
    argv : the flags (default: sys.argv[1:]).
    splits_script : flags of train_models_with_different_fluorescence_data_splits.py (seed k
        re-draws the fluorescence split; mixed precision by default).

    Returns
    -------
    RunConfig
    """
    description = ("Train models on several fluorescence data splits (seed k re-draws the split)" if splits_script
                   else "Train promoter expression models with a modelling strategy")
    parser = add_train_arguments(argparse.ArgumentParser(description=description), splits_script)
    return config_from_args(parser.parse_args(argv), splits_script)


def subsampled_tasks(tasks: TaskChoice, n: int) -> TaskChoice:
    """--subsample_train_set: Malinois_MPRA in the joint, fine-tuning and single-task lists becomes
    Malinois_MPRA_subsampled_<n> (pretraining tasks are kept whole), as published; each list
    given must name Malinois_MPRA."""
    if n < 1:
        raise InputError(f"--n_train_subsample must be at least 1, got {n}")
    changed = {}
    for flag in ("joint_tasks", "finetune_tasks", "single_task"):
        spec = getattr(tasks, flag)
        if spec is None:
            continue
        names = [name.strip() for name in spec.split(",")]
        if "Malinois_MPRA" not in names:
            raise InputError(f"--subsample_train_set subsamples Malinois_MPRA, but --{flag} {spec} does not name it")
        changed[flag] = ",".join(f"Malinois_MPRA_subsampled_{n}" if name == "Malinois_MPRA" else name
                                 for name in names)
    if not changed:
        raise InputError("--subsample_train_set needs Malinois_MPRA in --single_task, --joint_tasks or "
                         "--finetune_tasks")
    return replace(tasks, **changed)


def config_from_args(args: argparse.Namespace, splits_script: bool = False) -> RunConfig:
    """The typed configuration of parsed training flags (the only reader of their Namespace)."""
    devices: int | str = args.devices
    if devices != "auto":
        try:
            devices = int(devices)
        except ValueError:
            pass
    flags = {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None), list, dict))}
    tasks = TaskChoice(args.single_task, args.joint_tasks, args.pretrain_tasks, args.finetune_tasks)
    if getattr(args, "subsample_train_set", False):
        tasks = subsampled_tasks(tasks, args.n_train_subsample)
    return RunConfig(
        config_path=args.config_path,
        strategy=args.modelling_strategy,
        tasks=tasks,
        model=ModelChoice(args.model_name, args.model_size, dict(args.backbone_kwargs or {}), args.enformer_path),
        final=PhaseHyperparameters(args.lr, args.weight_decay, args.batch_size, args.max_epochs, args.train_mode,
                                   args.metric_to_monitor, args.metric_direction_which_is_optimal),
        pretrain=PhaseHyperparameters(args.pretrain_lr, args.pretrain_weight_decay, args.pretrain_batch_size,
                                      args.pretrain_max_epochs, args.pretrain_train_mode,
                                      args.pretrain_metric_to_monitor,
                                      args.pretrain_metric_direction_which_is_optimal),
        data=DataOptions(args.shrink_test_set, args.motif_meme_file, args.dnabert_path, args.sure_minus_strand_snps,
                         args.ccle_duplicate_sum, args.malinois_repeats, args.lentimpra_undefined_split,
                         args.starrseq_coordinates),
        trainer=TrainerOptions(args.accelerator, devices, args.num_nodes, args.strategy, args.precision,
                               args.num_workers, args.patience, args.save_top_k),
        logging=LoggingOptions(tuple(x.strip() for x in args.loggers.split(",") if x.strip()),
                               args.wandb_project_name, args.wandb_online),
        recipe=ModelRecipe(args.linear_probing_freeze, args.onecycle_interval, args.single_task_loss),
        num_seeds=args.num_random_seeds,
        data_split_seeds=splits_script,
        use_existing_models=args.use_existing_models,
        overwrite=args.overwrite,
        name_suffix=args.optional_name_suffix,
        script=SPLITS_SCRIPT if splits_script else "train_models",
        flags=flags,
    )
