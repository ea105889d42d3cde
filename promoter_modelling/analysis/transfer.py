"""Zero-shot transfer: how well do a (pretrained) model's head outputs track the fluorescence
measurements without any training on them? (eval_transfer_performance.py)

The model's heads are grouped as the published script groups its training tasks: the four
SuRE genome heads form one group (`SuRE_classification`: 5-class softmax per cell, averaged over
genomes, then the expected bin 0..4 per cell; `SuRE_regression`: outputs averaged), every other
head is its own group (so RNASeq gives LL100, CCLE, Roadmap). Classifier heads are compared as
probabilities, regression heads as raw outputs.

`--output_inds_to_compare` holds one space-separated group per head group, in order; each group
has one comma-separated entry per output of the evaluated task (JURKAT, K562, THP1 for
FluorescenceData): the head output compared with that cell, or -1 to skip it. Example for
SuRE_classification,Sharpr_MPRA: "-1,0,-1 -1,2,-1" compares K562 with the expected K562 SuRE bin
and with Sharpr output 2.

Every promoter of the evaluated task is predicted (train, val and test, as published). Pearson r
and Spearman rho are printed and written to `<root_dir>/transfer_performance/<name>_on_<task>.csv`
with scatter plots in `..._on_<task>.png`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats

from promoter_modelling.errors import InputError
from promoter_modelling.heads import GROUPED_MULTICLASS, HeadSpec, head_probabilities

if TYPE_CHECKING:
    from promoter_modelling.run_config import RunConfig

OUTPUT_DIR = "transfer_performance"
SURE_PREFIX = "SuRE_"
EVALUATED_TASKS = ("FluorescenceData", "FluorescenceData_JURKAT", "FluorescenceData_K562", "FluorescenceData_THP1")


@dataclass(frozen=True)
class TransferOptions:
    """Options of eval_transfer_performance beyond the training flags (which name the model).

    Parameters
    ----------
    output_inds_to_compare : space-separated groups, one per head group, each with one
        comma-separated head output index per evaluated output (-1 skips), e.g. "33,-1,55 88,12,21".
    task_to_evaluate : the fluorescence task whose measurements are compared (all its promoters).
    batch_size : sequences per model pass.
    device : auto (GPU when present), cpu or cuda.
    """

    output_inds_to_compare: str
    task_to_evaluate: str = "FluorescenceData"
    batch_size: int = 512
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.task_to_evaluate not in EVALUATED_TASKS:
            raise InputError(f"--task_to_evaluate {self.task_to_evaluate!r}: expected one of "
                             f"{', '.join(EVALUATED_TASKS)}")
        if not self.output_inds_to_compare.split():
            raise InputError("--output_inds_to_compare is empty; give one comma-separated group per head group")
        if self.batch_size < 1:
            raise InputError(f"--batch_size must be at least 1, got {self.batch_size}")


@dataclass
class HeadGroup:
    """Heads compared as one unit, and the names of the outputs it provides."""

    name: str
    specs: list[HeadSpec] = field(default_factory=list)

    @property
    def output_names(self) -> list[str]:
        spec = self.specs[0]
        if spec.kind == GROUPED_MULTICLASS:
            return [f"{name}_expected" for name in spec.output_names]
        return list(spec.output_names)


def head_groups(specs: list[HeadSpec]) -> list[HeadGroup]:
    """Group a model's heads: SuRE genome heads of one kind together, every other head alone."""
    groups: list[HeadGroup] = []
    by_name: dict[str, HeadGroup] = {}
    for spec in specs:
        if spec.name.startswith(SURE_PREFIX):
            key = "SuRE_classification" if spec.kind == GROUPED_MULTICLASS else "SuRE_regression"
        else:
            key = spec.name
        if key not in by_name:
            by_name[key] = HeadGroup(key)
            groups.append(by_name[key])
        group = by_name[key]
        if group.specs and group.specs[0].output_names != spec.output_names:
            raise InputError(f"heads {group.specs[0].name} and {spec.name} have different outputs; cannot average them")
        group.specs.append(spec)
    return groups


def head_values(spec: HeadSpec, logits: np.ndarray) -> np.ndarray:
    """Comparable values of one head: expected class per output for grouped multiclass heads
    (softmax per output's own class group), probabilities for binary heads, raw regression outputs."""
    values = head_probabilities(spec, np.asarray(logits, dtype=np.float64))
    if spec.kind == GROUPED_MULTICLASS:
        groups = values.reshape(len(values), len(spec.output_names), spec.num_classes)
        return groups @ np.arange(spec.num_classes, dtype=np.float64)
    return values


def group_predictions(model, groups: list[HeadGroup], codes: np.ndarray, batch_size: int,
                      device) -> dict[str, np.ndarray]:
    """(N, outputs) values per group over all promoters; heads of a group are averaged."""
    from promoter_modelling.inference import predict_inputs

    heads = [spec.name for group in groups for spec in group.specs]
    logits = predict_inputs(model, codes, batch_size, device, heads=heads)
    return {group.name: np.mean([head_values(spec, logits[spec.name]) for spec in group.specs], axis=0)
            for group in groups}


def parse_output_inds(text: str, groups: list[HeadGroup], eval_outputs: list[str]) -> list[list[int]]:
    """Parse --output_inds_to_compare against the model's head groups and the evaluated outputs."""
    parts = text.split()
    described = "; ".join(f"{g.name} ({len(g.output_names)} outputs)" for g in groups)
    if len(parts) != len(groups):
        raise InputError(f"--output_inds_to_compare has {len(parts)} group(s) but the model has {len(groups)} head "
                         f"group(s): {described}")
    parsed = []
    for part, group in zip(parts, groups):
        entries = part.split(",")
        if len(entries) != len(eval_outputs):
            raise InputError(f"--output_inds_to_compare group {part!r} (head group {group.name}) has {len(entries)} "
                             f"entries; expected one per evaluated output: {', '.join(eval_outputs)}")
        try:
            indices = [int(e) for e in entries]
        except ValueError:
            raise InputError(f"--output_inds_to_compare group {part!r}: entries must be integers (-1 to skip)") from None
        for index in indices:
            if index < -1 or index >= len(group.output_names):
                raise InputError(f"--output_inds_to_compare group {part!r}: index {index} is outside head group "
                                 f"{group.name}'s outputs 0..{len(group.output_names) - 1} (or -1 to skip)")
        parsed.append(indices)
    return parsed


def compare(predictions: dict[str, np.ndarray], groups: list[HeadGroup], y: np.ndarray, eval_outputs: list[str],
            indices: list[list[int]]) -> tuple[pd.DataFrame, list[dict]]:
    """Pearson and Spearman correlation of every chosen (head output, measured output) pair."""
    rows, panels = [], []
    for group, chosen in zip(groups, indices):
        for target, index in enumerate(chosen):
            if index == -1:
                continue
            pred, actual = predictions[group.name][:, index], y[:, target]
            finite = np.isfinite(pred) & np.isfinite(actual)
            pred, actual = pred[finite], actual[finite]
            constant = len(pred) < 3 or np.ptp(pred) == 0 or np.ptp(actual) == 0
            pearson = float("nan") if constant else float(scipy.stats.pearsonr(pred, actual)[0])
            spearman = float("nan") if constant else float(scipy.stats.spearmanr(pred, actual)[0])
            source = group.output_names[index]
            rows.append({"head_group": group.name, "head_output_index": index, "head_output": source,
                         "evaluated_output": eval_outputs[target], "num_sequences": int(len(pred)),
                         "pearson_r": pearson, "spearman_rho": spearman})
            panels.append({"x": pred, "y": actual, "xlabel": f"{group.name}: {source}",
                           "ylabel": f"measured {eval_outputs[target]}",
                           "title": f"r = {pearson:.3f}, rho = {spearman:.3f}"})
    return pd.DataFrame(rows), panels


def evaluate_transfer(run: RunConfig, options: TransferOptions) -> dict:
    """Compare a trained model's head outputs with fluorescence measurements (zero-shot transfer).

    Parameters
    ----------
    run : the training configuration of the model (its final phase's runs; the seed with the best
        validation score is evaluated).
    options : the evaluation options.

    Returns
    -------
    dict with `table` (Pearson r and Spearman rho per compared pair), `table_path`, `plot_path`
    and `checkpoint` (the evaluated model).
    """
    from promoter_modelling.analysis import plots
    from promoter_modelling.analysis.common import (
        best_seed_model,
        fluorescence_data,
        output_dir,
        phase_models,
        resolve_device,
    )
    from promoter_modelling.checkpoints import load_model
    from promoter_modelling.config import load_paths
    from promoter_modelling.io_utils import save_table
    from promoter_modelling.planning import final_phase
    from promoter_modelling.tasks.registry import build_task

    paths = load_paths(run.config_path)
    phase = final_phase(run)
    name, direction = phase.name_format, phase.direction
    task = options.task_to_evaluate
    chosen = best_seed_model(phase_models(paths, phase, run.model), direction)
    print(f"Best existing model across seeds is: {chosen.checkpoint}")
    device = resolve_device(options.device)
    model = load_model(chosen.checkpoint, map_location=device)
    if model.input_kind != "onehot":
        raise InputError(f"{chosen.checkpoint}: transfer evaluation supports one-hot sequence models only "
                         f"(this model reads {model.input_kind} inputs)")
    groups = head_groups(model.head_specs)
    eval_outputs = list(build_task(task, paths.root_data_dir).head.output_names)
    indices = parse_output_inds(options.output_inds_to_compare, groups, eval_outputs)
    # every promoter is predicted: the split seed only picks the cached table (the model's own)
    table, codes = fluorescence_data(paths, task, split_seed=model.input_recipe.split_seed)
    y = table[eval_outputs].to_numpy(dtype=np.float64)
    predictions = group_predictions(model, groups, codes, options.batch_size, device)
    results, panels = compare(predictions, groups, y, eval_outputs, indices)
    for group in groups:
        print(f"Comparing predictions from head group {group.name} ({', '.join(s.name for s in group.specs)}) "
              f"to {task}")
        for row in results[results["head_group"] == group.name].itertuples():
            print(f"  PearsonR between {row.head_output} and {row.evaluated_output} = {row.pearson_r} "
                  f"≈ {round(row.pearson_r, 4)}")
            print(f"  SpearmanR between {row.head_output} and {row.evaluated_output} = {row.spearman_rho} "
                  f"≈ {round(row.spearman_rho, 4)}")
    results.insert(0, "run", chosen.run)
    prefix = os.path.join(output_dir(paths, OUTPUT_DIR), f"{name}_on_{task}")
    save_table(results, f"{prefix}.csv", sep=",")
    plot = plots.scatter_panels(panels, f"{prefix}.png", f"{name}: head outputs vs {task}")
    print(f"table: {prefix}.csv")
    if plot:
        print(f"scatter plots: {plot}")
    return {"table": results, "table_path": f"{prefix}.csv", "plot_path": plot, "checkpoint": chosen.checkpoint}
