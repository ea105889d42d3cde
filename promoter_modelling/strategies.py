"""Training strategies end to end: single_task, joint, pretrain, pretrain+finetune,
pretrain+linear_probing, and the simple-regression strategies (single_task_simple_regression,
pretrain+simple_regression: fixed backbone features and a Lasso per output).

`run_strategy` plans the phases (`planning`), trains every seed of each (`training`) and writes
the summaries, plots and results index (`results`) under <root_dir>/summaries. Finished runs are
reused with --use_existing_models; unfinished ones resume from their last checkpoint.
"""

from __future__ import annotations

import os

import pandas as pd

from promoter_modelling import runs
from promoter_modelling.config import Paths, load_paths
from promoter_modelling.planning import Phase, flag_notices, plan
from promoter_modelling.recipe import InputRecipe
from promoter_modelling.results import (
    best_seed,
    index_row,
    print_results,
    scatter_plot,
    summarise,
    summary_columns,
    update_results_index,
    write_summary,
)
from promoter_modelling.run_config import RunConfig
from promoter_modelling.tasks.registry import expand_task_names
from promoter_modelling.training import (
    check_accelerator,
    check_model_fits_strategy,
    check_tasks_serve_model,
    is_rank_zero,
    resolve_recipe,
    train_seed,
)


def run_phase(phase: Phase, config: RunConfig, paths: Paths, recipe: InputRecipe) -> dict | None:
    """Train every seed of a phase and summarise them; None on processes other than rank 0."""
    records = [train_seed(phase, config, paths, seed, recipe) for seed in range(phase.num_seeds)]
    if not is_rank_zero():
        return None
    seeds = [r["seed"] for r in records]
    summary, table = summarise([summary_columns(r) for r in records], config.record(), seeds)
    summary["runs"] = [r["run"] for r in records]
    suffix = "_dlseed" if phase.data_split_seeds else ""
    directory = runs.summaries_dir(paths.root_dir)
    json_path, csv_path = write_summary(directory, phase.name_format + suffix, summary, table)
    checkpoints = [runs.checkpoint_dir(paths.root_dir, r["run"]) if phase.simple_regression  # the Lasso pipelines
                   else runs.best_checkpoint(paths.root_dir, r["run"], phase.direction) for r in records]
    print_results(phase.name_format, records, summary, json_path, csv_path, checkpoints)
    if records[0]["predictions"] and not phase.is_pretrain:
        best = best_seed(records)
        head, path = next(iter(best["predictions"].items()))
        frame = pd.read_csv(path)
        outputs = [c[len("y_"):] for c in frame.columns if c.startswith("y_")]
        plot_path = os.path.join(directory, f"{phase.name_format}{suffix}_best_model_predictions.png")
        plot = scatter_plot(frame, outputs, plot_path, f"{phase.name_format} ({head}, seed {best['seed']})")
        summary["best_model_plot"] = plot
        print(f"Prediction plot: {plot}")
    strategy = "pretrain" if phase.is_pretrain else config.strategy
    update_results_index(directory, index_row(phase.name_format + suffix, config.script, strategy, config.model.name,
                                              config.model.size, phase.tasks, phase.num_seeds, summary))
    return summary


def run_strategy(config: RunConfig) -> list[dict]:
    """Carry out a strategy end to end.

    Parameters
    ----------
    config : the run configuration (`promoter_modelling.cli.parse_train_args` builds it from the
        training scripts' flags).

    Returns
    -------
    The summaries of the phases trained by this call (a reused pretraining phase has none).
    """
    paths = load_paths(config.config_path)
    for spec in config.tasks.all_specs():
        expand_task_names(spec)  # unknown task names fail before any training
    check_tasks_serve_model(config)
    check_model_fits_strategy(config)
    check_accelerator(config)
    phases = plan(config)
    for note in flag_notices(config):
        print(f"note: {note}")
    recipe = resolve_recipe(config, paths)
    summaries = []
    for phase in phases:
        if phase.is_pretrain and config.use_existing_models and runs.is_finished(paths.root_dir, phase.name_format):
            print(f"[{phase.name_format}] pretrained model exists: reusing it")
            continue
        summary = run_phase(phase, config, paths, recipe)
        if summary is not None:
            summaries.append(summary)
    return summaries
