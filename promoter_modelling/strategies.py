"""Training strategies: single_task, joint, pretrain, pretrain+finetune, pretrain+linear_probing.

A strategy is planned as one or two phases (pretraining first, trained once with one seed and
reused by every fine-tune/probe that names the same pretraining tasks), each phase trained for
every seed. Finished runs are reused with --use_existing_models; unfinished ones resume from
their last checkpoint. Summaries, per-seed metrics and plots go under <root_dir>/summaries.
"""

from __future__ import annotations

import argparse
import os
import shutil
import warnings
from dataclasses import dataclass

import lightning as L
import numpy as np
import pandas as pd
import torch

from promoter_modelling import download, runs
from promoter_modelling.backbones.dnabert import DEFAULT_DNABERT_PATH
from promoter_modelling.backbones.registry import backbone_class
from promoter_modelling.checkpoints import AtomicCheckpointIO, load_backbone_weights, load_checkpoint_model
from promoter_modelling.config import Paths, load_paths
from promoter_modelling.errors import InputError
from promoter_modelling.heads import BINARY, REGRESSION
from promoter_modelling.inference import predict_loader
from promoter_modelling.io_utils import save_json, save_table
from promoter_modelling.lightning_module import MultiTaskDataModule, MultiTaskModule
from promoter_modelling.metrics import metric_names
from promoter_modelling.performance import select_precision
from promoter_modelling.results import (
    classification_metrics,
    regression_metrics,
    replicate_concordance,
    scatter_plot,
    summarise,
    update_results_index,
    write_summary,
)
from promoter_modelling.tasks.registry import build_tasks, expand_task_names, is_fluorescence_task


@dataclass
class Phase:
    """One training phase of a strategy."""

    name_format: str
    tasks: str
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    train_mode: str
    metric: str
    direction: str
    num_seeds: int
    is_pretrain: bool = False
    init_from: str | None = None  # run name whose best checkpoint initialises the backbone
    init_direction: str = "min"
    freeze: str | None = None
    data_split_seeds: bool = False


def _require(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n}" for n in names if not getattr(args, n, None)]
    if missing:
        raise InputError(f"--modelling_strategy {args.modelling_strategy} needs {' and '.join(missing)}")


def plan(args: argparse.Namespace, data_split_seeds: bool = False) -> list[Phase]:
    """Phases that carry out `args.modelling_strategy`."""
    strategy = args.modelling_strategy
    size = args.model_size
    common = dict(model_name=args.model_name, model_size=size, suffix=args.optional_name_suffix)
    final = dict(lr=args.lr, weight_decay=args.weight_decay, batch_size=args.batch_size, max_epochs=args.max_epochs,
                 train_mode=args.train_mode, metric=args.metric_to_monitor,
                 direction=args.metric_direction_which_is_optimal, num_seeds=args.num_random_seeds,
                 data_split_seeds=data_split_seeds)
    if strategy == "single_task":
        _require(args, "single_task")
        return [Phase(runs.name_format(strategy, single_task=args.single_task, **common), args.single_task, **final)]
    if strategy == "joint":
        _require(args, "joint_tasks")
        return [Phase(runs.name_format(strategy, joint_tasks=args.joint_tasks, **common), args.joint_tasks, **final)]
    if strategy not in runs.STRATEGIES:
        raise InputError(f"unknown modelling strategy {strategy!r}; expected one of {', '.join(runs.STRATEGIES)}")
    _require(args, "pretrain_tasks")
    pretrain = Phase(runs.pretrain_name(args.model_name, args.pretrain_tasks, size), args.pretrain_tasks,
                     lr=args.pretrain_lr, weight_decay=args.pretrain_weight_decay,
                     batch_size=args.pretrain_batch_size, max_epochs=args.pretrain_max_epochs,
                     train_mode=args.pretrain_train_mode, metric=args.pretrain_metric_to_monitor,
                     direction=args.pretrain_metric_direction_which_is_optimal, num_seeds=1, is_pretrain=True)
    if strategy == "pretrain":
        return [pretrain]
    _require(args, "finetune_tasks")
    name = runs.name_format(strategy, pretrain_tasks=args.pretrain_tasks, finetune_tasks=args.finetune_tasks, **common)
    freeze = None
    if strategy == "pretrain+linear_probing":
        freeze = "all" if args.linear_probing_freeze == "all" else "published"
    finetune = Phase(name, args.finetune_tasks, init_from=pretrain.name_format, init_direction=pretrain.direction,
                     freeze=freeze, **final)
    return [pretrain, finetune]


# --- building blocks ---------------------------------------------------------------------------

VIERSTRA_MOTIFS_URL = "https://resources.altius.org/~jvierstra/projects/motif-clustering-v2.0beta/consensus_pwms.meme"


def input_setup(args: argparse.Namespace, paths: Paths) -> tuple[str, dict, dict]:
    """(input kind, data-side options, extra backbone kwargs) for the chosen model.

    MotifBasedFCN scans the Vierstra consensus motifs (downloaded to <data>/common) unless
    --motif_meme_file is given. Randomly initialised small/tiny DNABERTs use a generated 6-mer
    vocabulary unless --dnabert_path names another tokenizer, so they run offline."""
    kind = getattr(backbone_class(args.model_name), "input_kind", "onehot")
    options = {"dnabert_path": getattr(args, "dnabert_path", None), "meme_file": getattr(args, "motif_meme_file", None)}
    options = {k: v for k, v in options.items() if v}
    extra: dict = {}
    if kind == "onehot":
        return kind, options, extra
    from promoter_modelling.tasks.inputs import input_dims, standard_kmer_tokenizer

    if kind == "motif_counts" and "meme_file" not in options:
        options["meme_file"] = download.fetch(os.path.join(paths.common_dir, "consensus_pwms.meme"),
                                              url=VIERSTRA_MOTIFS_URL)
    if kind == "tokens" and args.model_size != "full" and options.get("dnabert_path") == DEFAULT_DNABERT_PATH:
        options["dnabert_path"] = standard_kmer_tokenizer(os.path.join(paths.common_dir, "dnabert_6mer_tokenizer"))
    extra = input_dims(kind, options)
    return kind, options, extra


def make_tasks(phase: Phase, args: argparse.Namespace, paths: Paths, seed: int, setup: tuple[str, dict, dict]) -> list:
    """The phase's task data modules; `setup` is `input_setup(args, paths)`."""
    kind, options, _ = setup
    split_seed = seed if (phase.data_split_seeds and phase.num_seeds > 1) else None
    return build_tasks(phase.tasks, paths.root_data_dir, batch_size=phase.batch_size, num_workers=args.num_workers,
                       seed=seed, shrink_test_set=args.shrink_test_set, split_seed=split_seed, input_kind=kind,
                       input_options=options, zscore=kind != "onehot")


def check_metric(metric: str, tasks: list) -> None:
    """Fail early, with the list of valid names, when the monitored metric is never reported."""
    valid = ["overall_val_loss"] + [n for t in tasks for n in metric_names(t.head, "val")]
    if metric not in valid:
        shown = ", ".join(valid[:12]) + (", ..." if len(valid) > 12 else "")
        raise InputError(f"metric {metric!r} is not reported by tasks {[t.task_name for t in tasks]}; "
                         f"choose one of: {shown}")


def check_not_empty(tasks: list) -> None:
    """A split without rows cannot train or be evaluated: say which and why."""
    for task in tasks:
        task.prepare()
        for split in ("train", "val", "test"):
            dataset = getattr(task, f"{split}_dataset")
            if dataset is None or len(dataset) == 0:
                raise InputError(f"task {task.task_name}: the {split} split is empty (too few rows in "
                                 f"{task.cache_dir}; the split takes a share of every stratum)")


def make_loggers(args: argparse.Namespace, run_name: str, directory: str) -> list:
    from lightning.pytorch.loggers import CSVLogger

    loggers: list = [CSVLogger(directory, name="logs", version="")]
    mode = os.environ.get("WANDB_MODE", "online" if args.wandb_online else "offline")
    if mode != "disabled" and "wandb" in args.loggers:
        try:
            from lightning.pytorch.loggers import WandbLogger

            os.environ.setdefault("WANDB_DIR", directory)
            loggers.append(WandbLogger(name=run_name, project=args.wandb_project_name, save_dir=directory,
                                       offline=mode != "online", log_model=False))
        except Exception as exc:  # wandb is optional at run time
            warnings.warn(f"wandb logging disabled ({exc})", stacklevel=2)
    return loggers


def make_trainer(args: argparse.Namespace, phase: Phase, run_name: str, root_dir: str) -> L.Trainer:
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

    directory = runs.run_dir(root_dir, run_name)
    checkpoint = ModelCheckpoint(dirpath=runs.checkpoint_dir(root_dir, run_name),
                                 filename="best-{epoch:02d}-{" + phase.metric + ":.5f}", monitor=phase.metric,
                                 mode=phase.direction, save_top_k=args.save_top_k)
    # last.ckpt after every epoch (Lightning's save_last only writes it when a best checkpoint is
    # saved), so an interrupted run resumes from its latest epoch
    last = ModelCheckpoint(dirpath=runs.checkpoint_dir(root_dir, run_name), filename="last", monitor=None,
                           save_top_k=1, enable_version_counter=False)
    stopper = EarlyStopping(monitor=phase.metric, mode=phase.direction, patience=args.patience, min_delta=0.0)
    on_gpu = torch.cuda.is_available() and args.accelerator in ("auto", "gpu", "cuda")
    if on_gpu:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return L.Trainer(
        max_epochs=phase.max_epochs, accelerator=args.accelerator, devices=args.devices, num_nodes=args.num_nodes,
        strategy=args.strategy, precision=select_precision(args.precision, args.accelerator),
        callbacks=[checkpoint, last, stopper, TQDMProgressBar()],
        logger=make_loggers(args, run_name, directory), default_root_dir=directory, plugins=[AtomicCheckpointIO()],
        deterministic="warn" if on_gpu else True, gradient_clip_val=1.0, log_every_n_steps=10,
        num_sanity_val_steps=0, enable_progress_bar=True, enable_model_summary=False,
    )


def build_model(phase: Phase, args: argparse.Namespace, tasks: list, seed: int, extra: dict) -> MultiTaskModule:
    """A fresh model for the phase; `extra` are the backbone arguments the inputs imply."""
    kwargs = {**extra, **(args.backbone_kwargs or {})}
    return MultiTaskModule(heads=[t.head.to_dict() for t in tasks], model_name=args.model_name,
                           model_size=args.model_size, backbone_kwargs=kwargs, lr=phase.lr,
                           weight_decay=phase.weight_decay, freeze_backbone=phase.freeze,
                           scheduler_interval=args.onecycle_interval, seed=seed)


def _is_rank_zero() -> bool:
    """Whether this process is global rank 0 (torchrun: RANK; SLURM: SLURM_PROCID; Lightning's
    launcher: NODE_RANK and LOCAL_RANK), so only one process deletes or writes shared files."""
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"]) == 0
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"]) == 0
    return int(env.get("NODE_RANK", env.get("GROUP_RANK", 0))) == 0 and int(env.get("LOCAL_RANK", 0)) == 0


# --- one seed of one phase -----------------------------------------------------------------------

def train_seed(phase: Phase, args: argparse.Namespace, paths: Paths, seed: int) -> dict:
    """Train (or reuse) one model and evaluate it on the test sets. Returns the per-seed record."""
    run_name = runs.seed_run_name(phase.name_format, seed, phase.num_seeds, phase.data_split_seeds)
    directory = runs.run_dir(paths.root_dir, run_name)
    metrics_path = os.path.join(directory, "test_metrics.json")
    finished = runs.is_finished(paths.root_dir, run_name)
    if args.use_existing_models and finished and os.path.exists(metrics_path):
        print(f"[{run_name}] finished earlier: reusing its model and test results")
        import json

        with open(metrics_path, encoding="utf-8") as handle:
            return json.load(handle)

    L.seed_everything(seed, workers=True, verbose=False)
    setup = input_setup(args, paths)
    tasks = make_tasks(phase, args, paths, seed, setup)
    check_metric(phase.metric, tasks)
    check_not_empty(tasks)
    datamodule = MultiTaskDataModule(tasks, train_mode=phase.train_mode)
    trainer = make_trainer(args, phase, run_name, paths.root_dir)
    if args.use_existing_models and finished:
        best = runs.best_checkpoint(paths.root_dir, run_name, phase.direction)
        model = load_checkpoint_model(best)
    else:
        last = os.path.join(runs.checkpoint_dir(paths.root_dir, run_name), "last.ckpt")
        resume = last if (args.use_existing_models and os.path.exists(last)) else None
        if not resume and os.path.isdir(directory) and _is_rank_zero():
            shutil.rmtree(directory)  # retraining on request: old checkpoints would mix in
        model = build_model(phase, args, tasks, seed, setup[2])
        if phase.init_from and not resume:
            load_backbone_weights(model, runs.best_checkpoint(paths.root_dir, phase.init_from, phase.init_direction))
            model.apply_freeze()
        if resume:
            print(f"[{run_name}] resuming from {last}")
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
        callback = trainer.checkpoint_callback
        best = callback.best_model_path or os.path.join(runs.checkpoint_dir(paths.root_dir, run_name), "last.ckpt")
        if trainer.is_global_zero:
            save_json({"best_checkpoint": best, "best_score": float(callback.best_model_score or float("nan")),
                       "epochs": trainer.current_epoch}, os.path.join(directory, "done.txt"))
        model = load_checkpoint_model(best)
    trainer.test(model, datamodule=datamodule, verbose=False)
    # ddp_spawn runs the test in worker processes: their logged values come back in callback_metrics
    tested = model.last_metrics.get("test") or {k: float(v) for k, v in trainer.callback_metrics.items()
                                                if k.startswith("test_")}
    lightning_metrics = {k: v for k, v in tested.items() if "loss" not in k}
    record = {"run": run_name, "seed": seed, "lightning_test_metrics": lightning_metrics,
              "metrics": {}, "predictions": {}}
    if trainer.is_global_zero:
        record.update(_evaluate_predictions(model, tasks, directory))
        save_json(record, metrics_path)
    return record


def _evaluate_predictions(model: MultiTaskModule, tasks: list, directory: str) -> dict:
    """Write test predictions per head and compute the fluorescence metrics from them."""
    metrics: dict[str, float] = {}
    files: dict[str, str] = {}
    for task in tasks:
        head = task.head
        if head.kind not in (REGRESSION, BINARY):  # no per-output table or metric: skip the test pass
            continue
        y, pred = predict_loader(model, task.test_dataloader(), head.name)
        # all columns at once: heads can have hundreds of outputs
        frame = pd.DataFrame({**{f"y_{o}": y[:, i] for i, o in enumerate(head.output_names)},
                              **{f"pred_{o}": pred[:, i] for i, o in enumerate(head.output_names)}})
        if is_fluorescence_task(task.task_name):
            table = task.split_table("test")
            frame.insert(0, "sequence", table["sequence"].to_numpy()[: len(frame)])
            for i, output in enumerate(head.output_names):
                if head.kind == REGRESSION:
                    metrics.update(regression_metrics(y[:, i], pred[:, i], output))
                    metrics.update(replicate_concordance(table, output))
                else:
                    numerical = table.get(f"numerical_{output}")
                    metrics.update(classification_metrics(
                        y[:, i], pred[:, i], output, None if numerical is None else numerical.to_numpy()))
        if not frame.empty:  # an empty test split
            path = os.path.join(directory, f"test_predictions_{head.name}.csv")
            save_table(frame, path, sep=",")
            files[head.name] = path
    return {"metrics": metrics, "predictions": files}


# --- whole strategy ----------------------------------------------------------------------------

def _summary_columns(record: dict) -> dict[str, float]:
    if record["metrics"]:
        return dict(record["metrics"])
    return {k[len("test_"):]: v for k, v in record["lightning_test_metrics"].items() if "_mean_" in k}


def run_phase(phase: Phase, args: argparse.Namespace, paths: Paths, script: str) -> dict | None:
    records = [train_seed(phase, args, paths, seed) for seed in range(phase.num_seeds)]
    if not _is_rank_zero():
        return None
    seeds = [r["seed"] for r in records]
    summary, table = summarise([_summary_columns(r) for r in records], vars_for_json(args), seeds)
    summary["runs"] = [r["run"] for r in records]
    suffix = "_dlseed" if phase.data_split_seeds else ""
    directory = runs.summaries_dir(paths.root_dir)
    json_path, csv_path = write_summary(directory, phase.name_format + suffix, summary, table)
    print_results(phase, records, summary, json_path, csv_path, paths.root_dir)
    if records[0]["predictions"] and not phase.is_pretrain:
        best = _best_seed(records)
        head, path = next(iter(best["predictions"].items()))
        frame = pd.read_csv(path)
        outputs = [c[len("y_"):] for c in frame.columns if c.startswith("y_")]
        plot_path = os.path.join(directory, f"{phase.name_format}{suffix}_best_model_predictions.png")
        plot = scatter_plot(frame, outputs, plot_path, f"{phase.name_format} ({head}, seed {best['seed']})")
        summary["best_model_plot"] = plot
        print(f"Prediction plot: {plot}")
    update_results_index(directory, _index_row(phase, args, summary, script))
    return summary


def _best_seed(records: list[dict]) -> dict:
    def score(record: dict) -> float:
        values = [v for k, v in record["metrics"].items() if k.endswith("_SpearmanR") and "_expressed" not in k
                  and "extreme" not in k]
        return max(values) if values else -np.inf

    return max(records, key=score)


def _index_row(phase: Phase, args: argparse.Namespace, summary: dict, script: str) -> dict:
    row = {"run": phase.name_format + ("_dlseed" if phase.data_split_seeds else ""), "script": script,
           "modelling_strategy": "pretrain" if phase.is_pretrain else args.modelling_strategy,
           "model_name": args.model_name, "model_size": args.model_size, "tasks": phase.tasks,
           "num_seeds": phase.num_seeds}
    for metric in ("R2", "PearsonR", "SpearmanR", "Accuracy"):
        avgs = [v for k, v in summary.items() if k.endswith(f"_avg_{metric}") and k.count("_") == 2]
        stds = [v for k, v in summary.items() if k.endswith(f"_std_{metric}") and k.count("_") == 2]
        if avgs:
            row[f"mean_avg_{metric}"] = float(np.nanmean(avgs))
            row[f"mean_std_{metric}"] = float(np.nanmean(stds))
    row.update({k: v for k, v in summary.items() if k.count("_") == 2 and "_avg_" in k and not k.endswith("_disp")})
    return row


def vars_for_json(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None), list, dict))}


def print_results(phase: Phase, records: list[dict], summary: dict, json_path: str, csv_path: str,
                  root_dir: str) -> None:
    print()
    print(f"RESULTS: {phase.name_format} ({len(records)} seed{'s' if len(records) > 1 else ''})")
    for key in sorted(summary):
        if key.endswith("_disp") and "_expressed" not in key and "extreme" not in key:
            print(f"  {key[:-len('_disp')]} = {summary[key]}")
    print(f"Summary: {json_path}")
    print(f"Per-seed table: {csv_path}")
    for record in records:
        print(f"Checkpoint ({record['run']}): {runs.best_checkpoint(root_dir, record['run'], phase.direction)}")


def run_strategy(args: argparse.Namespace, script: str = "train_models", data_split_seeds: bool = False) -> list[dict]:
    """Carry out a strategy end to end; returns the summaries of its phases."""
    paths = load_paths(args.config_path)
    for spec in (args.single_task, args.joint_tasks, args.pretrain_tasks, args.finetune_tasks):
        expand_task_names(spec)  # unknown task names fail before any training
    summaries = []
    for phase in plan(args, data_split_seeds=data_split_seeds):
        if phase.is_pretrain and args.use_existing_models and runs.is_finished(paths.root_dir, phase.name_format):
            print(f"[{phase.name_format}] pretrained model exists: reusing it")
            continue
        summary = run_phase(phase, args, paths, script)
        if summary is not None:
            summaries.append(summary)
    return summaries
