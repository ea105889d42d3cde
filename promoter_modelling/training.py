"""Training one seed of one phase: the input recipe, the tasks, the model, the Lightning trainer,
then fit (or reuse / resume) and test."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import replace

import lightning as L
import torch

from promoter_modelling import download, locks, runs
from promoter_modelling.backbones.dnabert import DEFAULT_DNABERT_PATH
from promoter_modelling.backbones.registry import backbone_class, backbone_parameters
from promoter_modelling.checkpoints import AtomicCheckpointIO, load_backbone_weights, load_model, read_checkpoint
from promoter_modelling.config import Paths
from promoter_modelling.errors import InputError
from promoter_modelling.io_utils import save_json
from promoter_modelling.lightning_module import MultiTaskDataModule, MultiTaskModule
from promoter_modelling.metrics import metric_names
from promoter_modelling.performance import select_precision
from promoter_modelling.planning import Phase
from promoter_modelling.recipe import InputRecipe, make_recipe
from promoter_modelling.results import evaluate_predictions
from promoter_modelling.run_config import RunConfig
from promoter_modelling.run_settings import check_reusable, recorded_task_options, run_settings
from promoter_modelling.tasks.base import LoaderSettings, TaskContext, TaskDataModule
from promoter_modelling.tasks.inputs import standard_kmer_tokenizer
from promoter_modelling.tasks.registry import build_tasks, check_input_kind, expand_task_names
from promoter_modelling.training_logs import finish_loggers, make_loggers

VIERSTRA_MOTIFS_URL = "https://resources.altius.org/~jvierstra/projects/motif-clustering-v2.0beta/consensus_pwms.meme"


def resolve_recipe(config: RunConfig, paths: Paths) -> InputRecipe:
    """The input recipe of the configured model, its resources read once.

    MotifBasedFCN scans the Vierstra consensus motifs (downloaded to <data>/common) unless
    --motif_meme_file is given. Randomly initialised small/tiny DNABERTs use a generated 6-mer
    vocabulary unless --dnabert_path names another tokenizer, so they run offline."""
    kind = backbone_class(config.model.name).input_kind
    meme_file, dnabert_path = config.data.motif_meme_file, config.data.dnabert_path
    if kind == "motif_counts" and not meme_file:
        meme_file = download.fetch(os.path.join(paths.common_dir, "consensus_pwms.meme"), url=VIERSTRA_MOTIFS_URL)
    if kind == "tokens":
        dnabert_path = dnabert_path or DEFAULT_DNABERT_PATH
        if config.model.size != "full" and dnabert_path == DEFAULT_DNABERT_PATH:
            dnabert_path = standard_kmer_tokenizer(os.path.join(paths.common_dir, "dnabert_6mer_tokenizer"))
    return make_recipe(kind, meme_file=meme_file, dnabert_path=dnabert_path)


def check_accelerator(config: RunConfig) -> None:
    """Fail before any work when a GPU is asked for and there is none."""
    if config.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError(f"--accelerator {config.trainer.accelerator}: no CUDA GPU is available to PyTorch here; use "
                         "--accelerator cpu (or auto)")


def check_tasks_serve_model(config: RunConfig) -> None:
    """Fail before any work when a task named by the command cannot give the model its inputs."""
    kind = backbone_class(config.model.name).input_kind
    for spec in config.tasks.all_specs():
        for name in expand_task_names(spec):
            check_input_kind(name, config.model.name, kind)


def check_model_fits_strategy(config: RunConfig) -> None:
    """Fail before any work when the model cannot be trained the way the strategy asks: a fixed
    feature extractor outside the simple-regression strategies, a one-task model (Malinois) on
    several tasks, or simple regression on several tasks."""
    from promoter_modelling.planning import plan

    cls = backbone_class(config.model.name)
    for phase in plan(config):
        names = list(dict.fromkeys(expand_task_names(phase.tasks)))
        if phase.simple_regression:
            if len(names) != 1:
                raise InputError(f"--modelling_strategy {config.strategy} fits one task, got {len(names)}: "
                                 f"{', '.join(names)}")
            continue
        if cls.features_only:
            raise InputError(f"{config.model.name} is a fixed feature extractor without a trainable head: use "
                             "--modelling_strategy single_task_simple_regression or pretrain+simple_regression"
                             + (" (its pretraining phase cannot train it either)" if phase.is_pretrain else ""))
        if not cls.multi_task and len(names) > 1:
            raise InputError(f"{config.model.name} predicts the outputs of one task (one branch per output), but "
                             f"{'pretraining' if phase.is_pretrain else 'this run'} names {len(names)}: "
                             f"{', '.join(names)}; train it on one task at a time")


def make_tasks(phase: Phase, config: RunConfig, paths: Paths, seed: int, recipe: InputRecipe) -> list[TaskDataModule]:
    """The phase's task data modules for one seed, each given the options the published training
    scripts set for this model (`run_options` of each task)."""
    loader = LoaderSettings(batch_size=phase.hyper.batch_size, num_workers=config.trainer.num_workers, seed=seed,
                            shrink_test_set=config.data.shrink_test_set)
    context = TaskContext(config.model.name, recipe, config.data, phase.split_seed(seed), phase.is_pretrain,
                          phase.simple_regression)
    return build_tasks(phase.tasks, paths.root_data_dir, loader, context)


def check_metric(metric: str, tasks: list[TaskDataModule]) -> None:
    """Fail early, with the list of valid names, when the monitored metric is never reported."""
    valid = ["overall_val_loss"] + [n for t in tasks for n in metric_names(t.head, "val")]
    if metric not in valid:
        shown = ", ".join(valid[:12]) + (", ..." if len(valid) > 12 else "")
        raise InputError(f"metric {metric!r} is not reported by tasks {[t.task_name for t in tasks]}; "
                         f"choose one of: {shown}")


def check_not_empty(tasks: list[TaskDataModule]) -> None:
    """A split without rows cannot train or be evaluated: say which and why."""
    for task in tasks:
        task.prepare()
        for split in ("train", "val", "test"):
            dataset = getattr(task, f"{split}_dataset")
            if dataset is None or len(dataset) == 0:
                raise InputError(f"task {task.task_name}: the {split} split is empty (too few rows in "
                                 f"{task.cache_dir}; the split takes a share of every stratum)")


def make_trainer(config: RunConfig, phase: Phase, run_name: str, root_dir: str,
                 completed_epoch: int | None = None) -> L.Trainer:
    """The Lightning trainer of one run: best and last checkpoints, early stopping, loggers."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

    options = config.trainer
    directory = runs.run_dir(root_dir, run_name)
    checkpoint = ModelCheckpoint(dirpath=runs.checkpoint_dir(root_dir, run_name),
                                 filename="best-{epoch:02d}-{" + phase.metric + ":.5f}", monitor=phase.metric,
                                 mode=phase.direction, save_top_k=options.save_top_k)
    # last.ckpt after every epoch (Lightning's save_last only writes it when a best checkpoint is
    # saved), so an interrupted run resumes from its latest epoch
    last = ModelCheckpoint(dirpath=runs.checkpoint_dir(root_dir, run_name), filename="last", monitor=None,
                           save_top_k=1, enable_version_counter=False)
    stopper = EarlyStopping(monitor=phase.metric, mode=phase.direction, patience=options.patience, min_delta=0.0)
    on_gpu = torch.cuda.is_available() and options.accelerator in ("auto", "gpu", "cuda")
    if on_gpu:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return L.Trainer(
        max_epochs=phase.hyper.max_epochs, accelerator=options.accelerator, devices=options.devices,
        num_nodes=options.num_nodes, strategy=options.strategy,
        precision=select_precision(options.precision, options.accelerator),
        callbacks=[checkpoint, last, stopper, TQDMProgressBar()],
        logger=make_loggers(config.logging, run_name, directory, completed_epoch), default_root_dir=directory,
        plugins=[AtomicCheckpointIO()], deterministic="warn" if on_gpu else True, gradient_clip_val=1.0,
        log_every_n_steps=10, num_sanity_val_steps=0, enable_progress_bar=True, enable_model_summary=False,
    )


def backbone_arguments(config: RunConfig, tasks: list[TaskDataModule], recipe: InputRecipe) -> dict:
    """Constructor arguments of the configured backbone for these tasks: what the inputs imply
    (motif count, tokenizer), `--backbone_kwargs`, `--enformer_path`, and what the tasks fix: the
    input length of a backbone built for one length (PureCNN's `seq_len`, MPRAnn; the published
    layers are lazy) when every task has the same one, and the number of outputs of a backbone
    with one branch per output (Malinois)."""
    kwargs = {**recipe.backbone_arguments(), **dict(config.model.backbone_kwargs)}
    parameters = backbone_parameters(config.model.name)
    if "seq_len" not in kwargs and "seq_len" in parameters:
        lengths = {task.input_length() for task in tasks}
        if len(lengths) == 1 and None not in lengths:
            kwargs["seq_len"] = lengths.pop()
    if "n_outputs" not in kwargs and "n_outputs" in parameters and len(tasks) == 1:
        kwargs["n_outputs"] = tasks[0].head.num_logits
    if config.model.enformer_path and "enformer_path" in parameters:
        kwargs.setdefault("enformer_path", config.model.enformer_path)
    return kwargs


def build_model(phase: Phase, config: RunConfig, tasks: list[TaskDataModule], seed: int,
                recipe: InputRecipe) -> MultiTaskModule:
    """A fresh model for the phase, reading inputs as `recipe` makes them (`backbone_arguments`)."""
    model = MultiTaskModule(heads=[t.head.to_dict() for t in tasks], model_name=config.model.name,
                            model_size=config.model.size, backbone_kwargs=backbone_arguments(config, tasks, recipe),
                            lr=phase.hyper.lr, weight_decay=phase.hyper.weight_decay, freeze_backbone=phase.freeze,
                            scheduler_interval=config.recipe.onecycle_interval, seed=seed,
                            single_task_loss=config.recipe.single_task_loss)
    model.set_input_recipe(recipe)
    return model


def run_recipe(recipe: InputRecipe, phase: Phase, seed: int, tasks: list[TaskDataModule]) -> InputRecipe:
    """The recipe with this run's split seed and every task's options recorded."""
    return replace(recipe, split_seed=phase.split_seed(seed), task_options=recorded_task_options(tasks))


def is_rank_zero() -> bool:
    """Whether this process is global rank 0 (torchrun: RANK; SLURM: SLURM_PROCID; Lightning's
    launcher: NODE_RANK and LOCAL_RANK), so only one process deletes or writes shared files."""
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"]) == 0
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"]) == 0
    return int(env.get("NODE_RANK", env.get("GROUP_RANK", 0))) == 0 and int(env.get("LOCAL_RANK", 0)) == 0


def train_seed(phase: Phase, config: RunConfig, paths: Paths, seed: int, recipe: InputRecipe) -> dict:
    """Train (or reuse, or resume) one model and evaluate it on the test sets; returns the per-seed
    record. The run is locked for the duration: a second process asking for it is refused."""
    run_name = phase.run_name(seed)
    lock = (locks.exclusive(runs.lock_path(paths.root_dir, run_name), f"run {run_name}") if is_rank_zero()
            else contextlib.nullcontext())
    with lock:
        return _train_seed(phase, config, paths, seed, recipe, run_name)


def _train_seed(phase: Phase, config: RunConfig, paths: Paths, seed: int, recipe: InputRecipe,
                run_name: str) -> dict:
    root = paths.root_dir
    directory = runs.run_dir(root, run_name)
    metrics_path = os.path.join(directory, "test_metrics.json")
    last = os.path.join(runs.checkpoint_dir(root, run_name), "last.ckpt")
    L.seed_everything(seed, workers=True, verbose=False)
    tasks = make_tasks(phase, config, paths, seed, recipe)
    if not phase.simple_regression:  # (a Lasso fit monitors no metric)
        check_metric(phase.metric, tasks)
    check_not_empty(tasks)
    settings = run_settings(phase, config, seed, recipe, tasks, root)
    finished = runs.is_finished(root, run_name)
    reuse = config.use_existing_models and not config.overwrite
    if reuse and (finished or os.path.exists(last)):
        check_reusable(root, run_name, settings)
    if reuse and finished and os.path.exists(metrics_path):
        print(f"[{run_name}] finished earlier: reusing its model and test results")
        with open(metrics_path, encoding="utf-8") as handle:
            return json.load(handle)

    if phase.simple_regression:
        return _fit_simple_regression(phase, config, paths, seed, recipe, run_name, tasks, settings)
    datamodule = MultiTaskDataModule(tasks, train_mode=phase.hyper.train_mode)
    if reuse and finished:
        trainer = make_trainer(config, phase, run_name, root)
        model = load_model(run_checkpoint(root, run_name, phase, config, paths, recipe))
    else:
        resume = last if reuse and os.path.exists(last) else None
        completed_epoch = resumable_epoch(last) if resume else None
        if not resume:
            clear_earlier_run(config, root, run_name)
        if is_rank_zero():
            save_json(settings, runs.settings_path(root, run_name))
        model = build_model(phase, config, tasks, seed, run_recipe(recipe, phase, seed, tasks))
        if phase.init_from and not resume:
            load_backbone_weights(model, run_checkpoint(root, phase.init_from, None, config, paths, recipe,
                                                        direction=phase.init_direction))
            model.apply_freeze()
        if resume:
            print(f"[{run_name}] resuming from {last} (epoch {completed_epoch} completed)")
        trainer = make_trainer(config, phase, run_name, root, completed_epoch)
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
        except BaseException:
            finish_loggers(trainer.loggers)  # a failed run's W&B run ends here, not in the next model's
            raise
        callback = trainer.checkpoint_callback
        best = callback.best_model_path or last
        if trainer.is_global_zero:
            save_json({"best_checkpoint": best, "best_score": float(callback.best_model_score or float("nan")),
                       "epochs": trainer.current_epoch}, os.path.join(directory, "done.txt"))
        model = load_model(best)
    try:
        trainer.test(model, datamodule=datamodule, verbose=False)
    finally:
        finish_loggers(trainer.loggers)  # one W&B run per trained model
    # ddp_spawn runs the test in worker processes: their logged values come back in callback_metrics
    tested = model.last_metrics.get("test") or {k: float(v) for k, v in trainer.callback_metrics.items()
                                                if k.startswith("test_")}
    lightning_metrics = {k: v for k, v in tested.items() if "loss" not in k}
    record = {"run": run_name, "seed": seed, "lightning_test_metrics": lightning_metrics,
              "metrics": {}, "predictions": {}}
    if trainer.is_global_zero:
        record.update(evaluate_predictions(model, tasks, directory))
        save_json(record, metrics_path)
    return record


def clear_earlier_run(config: RunConfig, root: str, run_name: str) -> None:
    """Before a run is trained or fitted anew: an earlier run of the name is set aside as a
    version, or deleted with --overwrite (by rank 0 only)."""
    if not os.path.isdir(runs.run_dir(root, run_name)) or not is_rank_zero():
        return
    if config.overwrite:
        shutil.rmtree(runs.run_dir(root, run_name))
        print(f"[{run_name}] --overwrite: the earlier run was deleted")
    else:
        print(f"[{run_name}] an earlier run exists: kept as {runs.set_aside(root, run_name)}")


def _fit_simple_regression(phase: Phase, config: RunConfig, paths: Paths, seed: int, recipe: InputRecipe,
                           run_name: str, tasks: list[TaskDataModule], settings: dict) -> dict:
    """A simple-regression seed: an earlier run of the name is set aside (or deleted with
    --overwrite), the pipelines are fitted, and the record is written as a trained run's is."""
    from promoter_modelling.simple_regression import fit_seed

    root = paths.root_dir
    directory = runs.run_dir(root, run_name)
    clear_earlier_run(config, root, run_name)
    save_json(settings, runs.settings_path(root, run_name))
    checkpoint = (run_checkpoint(root, phase.init_from, None, config, paths, recipe, direction=phase.init_direction)
                  if phase.init_from else None)
    record = fit_seed(phase, config, paths, seed, run_name, tasks, backbone_arguments(config, tasks, recipe), checkpoint)
    save_json(record, os.path.join(directory, "test_metrics.json"))
    save_json({"simple_regression": record["simple_regression"], "features": record["features"]},
              os.path.join(directory, "done.txt"))  # last: a finished run has its metrics
    return record


def resumable_epoch(path: str) -> int:
    """The epoch a `last.ckpt` completed; a truncated or unreadable file is a one-line error
    saying which file to delete."""
    try:
        checkpoint = read_checkpoint(path)
    except InputError as exc:
        raise InputError(f"{path} cannot be resumed from ({exc}); delete it to train the run from the start") \
            from None
    return int(checkpoint.get("epoch", 0))


def run_checkpoint(root: str, run_name: str, phase: Phase | None, config: RunConfig, paths: Paths,
                   recipe: InputRecipe, direction: str | None = None) -> str:
    """The best checkpoint of a finished run, in this package's format: a checkpoint written by the
    published code (extracted under saved_models/ as its README says) is converted once, beside
    the original (`checkpoints/imported/`), with the model and tasks of the run."""
    from promoter_modelling.checkpoints import ensure_package_checkpoint

    direction = direction or phase.direction
    best = runs.best_checkpoint(root, run_name, direction)
    tasks = phase.tasks if phase is not None else (config.tasks.pretrain_tasks or "")
    return ensure_package_checkpoint(best, config.model.name, tasks, config.model.size,
                                     backbone_kwargs={**recipe.backbone_arguments(), **dict(config.model.backbone_kwargs)},
                                     data_dir=paths.root_data_dir, input_recipe=recipe)
