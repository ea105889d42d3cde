"""Design promoters end to end: ensemble, starting sequences, (conservative) optimisation,
constraints, ensemble scoring, diverse selection and the written report.

Entry point: `design_promoters(checkpoints, DesignOptions(...), output_dir, paths)`; the command
line (`promoter-modelling design`) is parsed in `promoter_modelling.cli.design_args`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from promoter_modelling import sequence as seqlib
from promoter_modelling.config import Paths
from promoter_modelling.design import coms, search
from promoter_modelling.design.constraints import SequenceConstraints, repair
from promoter_modelling.design.ensemble import Ensemble
from promoter_modelling.design.objective import check_kind, specificity
from promoter_modelling.errors import InputError

STARTS = ("training", "random")
DESIGN_FILES = ("designs.fa", "designs.tsv", "candidates.tsv", "design.json")


@dataclass(frozen=True)
class DesignOptions:
    """What to design and how.

    target_cell: the cell designs should drive expression in; objective: "mean", "max" or "de"
    (see objective.py); num_designs: designs in the final set; candidates_per_design: candidates
    optimised per final design (the selection picks among them); optimizer: "gradient" or
    "evolution"; start: "training" (the training promoters the ensemble ranks highest) or
    "random"; conservative: optimise against COMs fine-tuned copies of the models (`coms`);
    spread_penalty: objective and ranking use mean - spread_penalty * ensemble standard
    deviation; min_distance: smallest edit distance between two chosen designs; head: the head
    to design with when several predict the target cell; seed: every random choice; device:
    "auto", "cpu", "cuda", ...; meme_file: motifs scanned in the designs (default: the bundled
    JASPAR file); progress: progress bars.
    """

    target_cell: str
    objective: str = "mean"
    num_designs: int = 100
    candidates_per_design: int = 2
    optimizer: str = "gradient"
    start: str = "training"
    conservative: bool = False
    search: search.SearchOptions = field(default_factory=search.SearchOptions)
    coms: coms.ConservativeOptions = field(default_factory=coms.ConservativeOptions)
    constraints: SequenceConstraints = field(default_factory=SequenceConstraints)
    spread_penalty: float = 1.0
    min_distance: int = 10
    head: str | None = None
    seed: int = 0
    device: str = "auto"
    meme_file: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        check_kind(self.objective)
        if self.optimizer not in search.OPTIMIZERS:
            raise InputError(f"--optimizer {self.optimizer!r}: choose one of {', '.join(search.OPTIMIZERS)}")
        if self.start not in STARTS:
            raise InputError(f"--start {self.start!r}: choose one of {', '.join(STARTS)}")
        if self.num_designs < 1:
            raise InputError(f"--num_designs must be at least 1, got {self.num_designs}")
        if self.candidates_per_design < 1:
            raise InputError(f"--candidates_per_design must be at least 1, got {self.candidates_per_design}")
        if self.min_distance < 0:
            raise InputError(f"--min_distance must be zero or positive, got {self.min_distance}")
        if not self.spread_penalty >= 0:
            raise InputError(f"--spread_penalty must be zero or positive, got {self.spread_penalty}")

    @property
    def num_candidates(self) -> int:
        return self.num_designs * self.candidates_per_design

    def record(self) -> dict:
        """The options as JSON-ready values (what `design.json` stores and compares)."""
        out = asdict(self)
        out.pop("progress")
        out["constraints"]["forbidden_sites"] = list(self.constraints.forbidden_sites)
        return out


@dataclass
class TrainingPromoters:
    """The promoters the models were trained on: codes (N, L), measured values (N, cells) and ids."""

    codes: np.ndarray
    measured: np.ndarray
    ids: list[str]


def training_promoters(paths: Paths, ensemble: Ensemble) -> TrainingPromoters:
    """The train split of the ensemble's fluorescence task (the split its models were trained on).

    Raises InputError when the ensemble's head is not a fluorescence task."""
    from promoter_modelling.analysis.common import fluorescence_data, models_split_seed
    from promoter_modelling.tasks.registry import is_fluorescence_task

    recorded = [t for t in ensemble.models[0].input_recipe.task_options if is_fluorescence_task(t)]
    task = recorded[0] if len(recorded) == 1 else "FluorescenceData" if ensemble.head == "Fluorescence" else None
    if task is None:
        raise InputError(f"{ensemble.paths[0]}: head {ensemble.head!r} is not that of a fluorescence task, so its "
                         "training promoters cannot be read; use --start random without --conservative")
    merged, codes = fluorescence_data(paths, task, models_split_seed(ensemble.models, "train"))
    train = merged["is_train"].to_numpy(dtype=bool)
    missing = [c for c in ensemble.cells if c not in merged.columns]
    if missing:
        raise InputError(f"{ensemble.head}: the data has no measurements for {', '.join(missing)}")
    rows = np.flatnonzero(train)
    measured = merged.loc[train, ensemble.cells].to_numpy(dtype=np.float32)
    return TrainingPromoters(codes[rows], measured, [f"train_{i}" for i in rows])


def random_starts(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """(n, length) uniformly random bases."""
    return rng.integers(0, 4, size=(n, length)).astype(np.uint8)


def scores_of(predictions: np.ndarray, target: int, kind: str, spread_penalty: float) -> tuple[np.ndarray, ...]:
    """(ensemble mean specificity, its standard deviation over members, the ranking score)."""
    values = specificity(predictions, target, kind)  # (M, N)
    mean = values.mean(axis=0)
    spread = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
    return mean, spread, mean - spread_penalty * spread


def _log(message: str) -> None:
    print(f"[design] {message}", file=sys.stderr, flush=True)


def optimise(ensemble: Ensemble, start: np.ndarray, options: DesignOptions,
             training: TrainingPromoters | None, device: torch.device) -> np.ndarray:
    """Optimised candidates (N, L) from `start` codes with the chosen optimiser and models."""
    rng = np.random.default_rng([options.seed, 1])
    members = ensemble.models
    if options.conservative:
        if training is None:
            raise InputError("--conservative needs the training promoters (the ensemble's fluorescence task)")
        _log(f"fine-tuning {len(members)} conservative model(s) (alpha {options.coms.alpha}, "
             f"{options.coms.steps} steps)")
        members = [coms.conservative_copy(m, ensemble.head, training.codes, training.measured, ensemble.target,
                                          options.objective, options.coms, device, options.progress)
                   for m in members]
    if options.optimizer == "gradient":
        objective = search.objective_of(lambda x: ensemble.predict_soft(x, members), ensemble.target,
                                        options.objective, options.spread_penalty)
        designs, _ = search.gradient_ascent(start, objective, options.search, options.constraints, device,
                                            options.progress)
        return designs
    view = ensemble if not options.conservative else Ensemble(ensemble.paths, ensemble.cells[ensemble.target],
                                                              ensemble.head, device, members)

    def score(codes: np.ndarray) -> np.ndarray:
        return scores_of(view.predict(codes, options.search.batch_size), ensemble.target, options.objective,
                         options.spread_penalty)[2]

    designs, _ = search.evolve(start, score, options.search, options.constraints, rng, options.progress)
    return designs


def starting_sequences(ensemble: Ensemble, options: DesignOptions, training: TrainingPromoters | None,
                       training_scores: np.ndarray | None, length: int) -> tuple[np.ndarray, list[str]]:
    """(codes, ids) of the starts: the best-ranked training promoters, or random sequences;
    repaired to satisfy the constraints."""
    rng = np.random.default_rng([options.seed, 0])
    n = options.num_candidates
    if options.start == "training":
        if training is None:
            raise InputError("--start training needs the training promoters (the ensemble's fluorescence task)")
        order = np.argsort(-training_scores, kind="stable")
        picks = order[np.arange(n) % len(order)]  # more candidates than promoters: start again from the best
        codes, ids = training.codes[picks], [training.ids[i] for i in picks]
    else:
        codes, ids = random_starts(n, length, rng), ["random"] * n
    if options.constraints.is_active():
        codes, ok = repair(codes, options.constraints, rng)
        if not ok.all():
            raise InputError(f"{int((~ok).sum())} of {n} starting sequences cannot be brought within the constraints "
                             f"({options.constraints.problems(codes[~ok][:1])[0]}); relax them")
    return codes, ids


def design_promoters(checkpoints: Sequence[str], options: DesignOptions, output_dir: str,
                     paths: Paths | None = None, overwrite: bool = False) -> pd.DataFrame:
    """Design promoters for `options.target_cell` and write the report to `output_dir`.

    Parameters
    ----------
    checkpoints : the ensemble's checkpoints (e.g. one per training seed).
    options : target, objective, optimiser, budget, constraints, selection.
    output_dir : folder of designs.fa, designs.tsv, candidates.tsv, design.json and plots.
    paths : the configured directories (the training promoters are read from `root_data_dir`);
        None with `--start random` and no conservative models.
    overwrite : replace designs of other options already in `output_dir`.

    Returns
    -------
    The chosen designs (the table written to designs.tsv).
    """
    from promoter_modelling.analysis.common import resolve_device
    from promoter_modelling.design import selection
    from promoter_modelling.design.outputs import write_report

    began = time.time()
    check_output_dir(output_dir, options, list(checkpoints), overwrite)
    device = resolve_device(options.device)
    torch.manual_seed(options.seed)
    ensemble = Ensemble(checkpoints, options.target_cell, options.head, device)
    if options.optimizer == "gradient":
        ensemble.require_one_hot("gradient-based design", " (use --optimizer evolution)")
    if options.conservative:
        ensemble.require_one_hot("conservative models")
    needs_training = options.start == "training" or options.conservative
    training = training_promoters(paths, ensemble) if (paths is not None or needs_training) else None
    length = ensemble.length or (training.codes.shape[1] if training is not None else None)
    if length is None:
        raise InputError(f"{ensemble.paths[0]}: the checkpoint records no sequence length")
    _log(f"{len(ensemble.models)} model(s), head {ensemble.head}, target {options.target_cell} "
         f"({options.objective} specificity), {options.num_candidates} candidates of {length} bp")
    training_predictions = training_scores = None
    if training is not None:
        training_predictions = ensemble.predict(training.codes, options.search.batch_size)
        training_scores = scores_of(training_predictions, ensemble.target, options.objective,
                                    options.spread_penalty)[2]
    start, start_ids = starting_sequences(ensemble, options, training, training_scores, length)
    candidates = optimise(ensemble, start, options, training, device)
    candidates, ok = repair(candidates, options.constraints, np.random.default_rng([options.seed, 2]))
    table = candidate_table(ensemble, candidates, start, start_ids, ok, options)
    chosen = selection.select_diverse(table["sequence"].tolist(),
                                      np.where(table["meets_constraints"], table["score"], np.nan),
                                      options.num_designs, options.min_distance)
    table["chosen"] = False
    table.loc[chosen, "chosen"] = True
    designs = table.loc[chosen].reset_index(drop=True)
    designs.insert(0, "id", [f"{options.target_cell}_design_{i + 1}" for i in range(len(designs))])
    if training is not None:
        distance, nearest = selection.nearest(designs["sequence"].tolist(), seqlib.decode(training.codes))
        designs["nearest_training_distance"] = distance
        designs["nearest_training_promoter"] = [training.ids[i] for i in nearest]
    if len(designs) < options.num_designs:
        _log(f"only {len(designs)} of {options.num_candidates} candidates meet the constraints at edit distance "
             f">= {options.min_distance} from each other (asked for {options.num_designs})")
    designs, _ = write_report(output_dir, designs, table, options, ensemble, training, training_predictions,
                 {"checkpoints": [os.path.abspath(p) for p in ensemble.paths], "options": options.record(),
                  "seconds": round(time.time() - began, 1)})
    _log(f"wrote {len(designs)} designs to {output_dir} in {time.time() - began:.0f} s")
    return designs


def candidate_table(ensemble: Ensemble, candidates: np.ndarray, start: np.ndarray, start_ids: list[str],
                    ok: np.ndarray, options: DesignOptions) -> pd.DataFrame:
    """Every optimised candidate with the ensemble's per-cell mean and spread, its specificity,
    ranking score, start and constraint status; duplicates of an earlier candidate are marked
    as not meeting the constraints (so they are never chosen twice)."""
    predictions = ensemble.predict(candidates, options.search.batch_size)  # (M, N, C)
    mean, spread, score = scores_of(predictions, ensemble.target, options.objective, options.spread_penalty)
    sequences = seqlib.decode(candidates)
    columns: dict = {"sequence": sequences}
    for c, cell in enumerate(ensemble.cells):
        columns[f"pred_{cell}"] = predictions[:, :, c].mean(axis=0)
    for c, cell in enumerate(ensemble.cells):
        columns[f"spread_{cell}"] = (predictions[:, :, c].std(axis=0, ddof=1) if len(predictions) > 1
                                     else np.zeros(len(candidates)))
    columns.update({"specificity": mean, "specificity_spread": spread, "score": score,
                    "gc": seqlib.gc_content(candidates), "start": start_ids,
                    "edits_from_start": (candidates != start).sum(axis=1)})
    table = pd.DataFrame(columns)
    table["meets_constraints"] = ok & ~table["sequence"].duplicated().to_numpy()
    return table


def check_output_dir(output_dir: str, options: DesignOptions, checkpoints: list[str], overwrite: bool) -> None:
    """Refuse an output folder holding designs made with other options or models (unless
    `overwrite`), so earlier designs are never replaced by accident."""
    import json

    record = os.path.join(output_dir, "design.json")
    if os.path.isfile(output_dir):
        raise InputError(f"{output_dir}: is a file; give a folder for the designs")
    if not os.path.exists(record) or overwrite:
        return
    try:
        with open(record, encoding="utf-8") as handle:
            earlier = json.load(handle)
    except (OSError, json.JSONDecodeError):
        earlier = {}
    same = (earlier.get("options") == json.loads(json.dumps(options.record()))
            and earlier.get("checkpoints") == [os.path.abspath(p) for p in checkpoints])
    what = "the same options (they would be replaced)" if same else "other options or models"
    raise InputError(f"{output_dir}: holds designs made with {what}; choose another --output_dir or pass --overwrite")
