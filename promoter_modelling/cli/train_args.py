"""Command-line interfaces: the training scripts' flags and the `promoter-modelling` entry point."""

from __future__ import annotations

import argparse
import json
import sys

from promoter_modelling.backbones.dnabert import DEFAULT_DNABERT_PATH
from promoter_modelling.backbones.registry import MODEL_SIZES, backbone_names
from promoter_modelling.errors import DownloadError, InputError
from promoter_modelling.runs import STRATEGIES


def add_train_arguments(parser: argparse.ArgumentParser, splits_script: bool = False) -> argparse.ArgumentParser:
    """Every flag of the published train_models.py, plus this package's additions."""
    from promoter_modelling.tasks.registry import task_names

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
    p("--shrink_test_set", action="store_true", help="keep only the first 10 val/test rows of SuRE and ENCODE")
    if not splits_script:
        p("--subsample_train_set", action="store_true", help="accepted for compatibility (Malinois tasks only)")
        p("--n_train_subsample", type=int, default=15000, help="accepted for compatibility (Malinois tasks only)")
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
      help="reuse finished runs and resume unfinished ones from their last checkpoint")
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
    p("--dnabert_path", default=DEFAULT_DNABERT_PATH, help="DNABERT weights: local folder or hub id")
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


def parse_train_args(argv: list[str] | None = None, splits_script: bool = False) -> argparse.Namespace:
    description = ("Train models on several fluorescence data splits (seed k re-draws the split)" if splits_script
                   else "Train promoter expression models with a modelling strategy")
    parser = add_train_arguments(argparse.ArgumentParser(description=description), splits_script)
    args = parser.parse_args(argv)
    if args.devices != "auto":
        try:
            args.devices = int(args.devices)
        except ValueError:
            pass
    return args


def run_cli(function, *a, **kw):
    """Run a command, turning input and download errors into one clear line and exit code 2."""
    try:
        return function(*a, **kw)
    except (InputError, DownloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def train_main(argv: list[str] | None = None, splits_script: bool = False) -> None:
    from promoter_modelling.strategies import run_strategy

    args = parse_train_args(argv, splits_script)
    script = "train_models_with_different_fluorescence_data_splits" if splits_script else "train_models"
    run_cli(run_strategy, args, script=script, data_split_seeds=splits_script)


def main(argv: list[str] | None = None) -> None:
    """`promoter-modelling <command> ...`: train, train-splits, demo-data, predict, import-checkpoint."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": "train models (flags of train_models.py)",
                "train-splits": "train on several fluorescence data splits",
                "demo-data": "write demo / fixture data",
                "predict": "predict expression for sequences with trained checkpoints",
                "import-checkpoint": "convert a checkpoint of the published code into this package's format"}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: promoter-modelling {" + ",".join(commands) + "} ...\n")
        for name, text in commands.items():
            print(f"  {name:19s}{text}")
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    command, rest = argv[0], argv[1:]
    if command == "train":
        train_main(rest)
    elif command == "train-splits":
        train_main(rest, splits_script=True)
    elif command == "demo-data":
        from promoter_modelling.demo_data import main as demo_main

        demo_main(rest)
    elif command == "import-checkpoint":
        from promoter_modelling.checkpoints import import_main

        run_cli(import_main, rest)
    else:
        from promoter_modelling.predict import main as predict_main

        run_cli(predict_main, rest)
