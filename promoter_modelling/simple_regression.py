"""The simple-regression strategies: fixed backbone features, one Lasso per output.

`single_task_simple_regression` reads features from the backbone as built (pretrained weights
for the Enformer and DNABERT families, random ones otherwise); `pretrain+simple_regression`
reads them from the backbone of the pretraining run's best checkpoint (the published code
loaded that checkpoint but never applied it). Per output, a StandardScaler + Lasso pipeline
chooses alpha among 1e-5 ... 10 by R2 on the validation split (scaler fitted on train + val,
then refit on train + val with the chosen alpha), and predicts the test split, as published.
Fluorescence inputs are the promoters in their 1,177-bp plasmid context (`use_construct`).

Features are cached per run family (`saved_models/<run>_unified_cache/`, shared by every seed)
under a digest of the backbone weights and the inputs, so they are never reused for other data
or weights; fitted pipelines are saved per run in its checkpoint folder.
"""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np
import torch

from promoter_modelling import runs
from promoter_modelling.backbones.registry import build_backbone
from promoter_modelling.checkpoints import load_pretrained_backbone
from promoter_modelling.config import Paths
from promoter_modelling.download import atomic_path
from promoter_modelling.errors import InputError
from promoter_modelling.heads import MASKED_REGRESSION, REGRESSION
from promoter_modelling.inference import default_device
from promoter_modelling.planning import Phase
from promoter_modelling.results import score_test_predictions
from promoter_modelling.run_config import RunConfig
from promoter_modelling.sequence import codes_to_one_hot

ALPHAS = np.logspace(-5, 1, 7)  # 1e-5 ... 10
LASSO_SEED = 97
LASSO_MAX_ITER = 1000
FEATURE_FORMAT = 1


def check_simple_regression_tasks(tasks: list) -> None:
    """One task with a regression head (the published code: one Fluorescence or Malinois task)."""
    if len(tasks) != 1:
        raise InputError(f"simple regression fits one task, got {len(tasks)}: "
                         f"{', '.join(t.task_name for t in tasks)}")
    if tasks[0].head.kind not in (REGRESSION, MASKED_REGRESSION):
        raise InputError(f"simple regression fits regression targets; {tasks[0].task_name} is a "
                         f"{tasks[0].head.kind} task")


def unified_cache_dir(root_dir: str, run_name: str) -> str:
    """The feature cache shared by every seed of a run (published: `<run>_unified_cache`)."""
    base = run_name.split("_seed")[0]  # `<name>_dl` for the data-split script's runs, as published
    return os.path.join(root_dir, "saved_models", f"{base}_unified_cache")


def task_rows(task) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(inputs, targets with NaN where unmeasured, measured mask, row indices per split) over
    every row of a task. A task with a table of all rows (fluorescence) gives that order, the same
    for every split seed, so its features are computed once for all seeds."""
    task.prepare()
    full = getattr(task, "full_dataset", None)
    merged = getattr(task, "merged", None)
    if full is not None and merged is not None:
        y = np.asarray(full.y, dtype=np.float32)
        splits = {s: np.flatnonzero(merged[f"is_{s}"].to_numpy()) for s in ("train", "val", "test")}
        return np.asarray(full.x), y, ~np.isnan(y), splits
    parts = [getattr(task, f"{s}_dataset") for s in ("train", "val", "test")]
    x = np.concatenate([np.asarray(p.x) for p in parts])
    y = np.concatenate([np.asarray(p.y, dtype=np.float32) for p in parts])
    masks = [np.asarray(p.mask, bool) if getattr(p, "mask", None) is not None else ~np.isnan(np.asarray(p.y))
             for p in parts]
    bounds = np.cumsum([0] + [len(p.y) for p in parts])
    splits = {s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(("train", "val", "test"))}
    return x, np.where(np.concatenate(masks), y, np.nan), np.concatenate(masks), splits


def _digest_arrays(arrays) -> str:
    h = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype}{array.shape}".encode())
        h.update(memoryview(array).cast("B"))
    return h.hexdigest()[:16]


def weights_digest(backbone: torch.nn.Module) -> str:
    """Digest of a backbone's weights and buffers (what decides its features)."""
    return _digest_arrays(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy()
                          for t in backbone.state_dict().values())


@torch.inference_mode()
def backbone_features(backbone: torch.nn.Module, inputs: np.ndarray, batch_size: int, path: str,
                      device: torch.device | None = None) -> np.ndarray:
    """Flattened features (N, F) float32 of a fixed backbone in eval mode, written batch by batch
    into the .npy at `path` (memory-mapped, renamed into place when complete), so memory stays
    bounded however many rows. Returns the file, memory-mapped."""
    if len(inputs) == 0:
        raise InputError("simple regression: the task has no rows to compute features of")
    device = device or default_device()
    backbone = backbone.to(device).eval()

    def batch(start: int) -> np.ndarray:
        x = torch.as_tensor(np.ascontiguousarray(inputs[start:start + batch_size])).to(device)
        if backbone.input_kind == "onehot" and x.dtype == torch.uint8:
            x = codes_to_one_hot(x)
        return backbone(x).float().flatten(1).cpu().numpy()

    first = batch(0)
    with atomic_path(path, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(inputs), first.shape[1]))
        out[:len(first)] = first
        for start in range(batch_size, len(inputs), batch_size):
            out[start:start + batch_size] = batch(start)
            print(f"\rfeatures: {min(start + batch_size, len(inputs))}/{len(inputs)} sequences", end="", flush=True)
        out.flush()
        del out
    print()
    return np.load(path, mmap_mode="r")


def fit_output(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray):
    """StandardScaler + Lasso with alpha chosen by R2 on the validation rows, refit on train + val
    (the published pipeline: the scaler sees train + val; `PredefinedSplit` holds out val)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if len(y_train) == 0 or len(y_val) == 0:
        raise InputError(f"simple regression needs measured train and validation rows (got {len(y_train)} and "
                         f"{len(y_val)})")
    fold = PredefinedSplit(np.concatenate([np.full(len(y_train), -1), np.zeros(len(y_val), int)]))
    search = GridSearchCV(Lasso(random_state=LASSO_SEED, max_iter=LASSO_MAX_ITER), {"alpha": ALPHAS}, cv=fold)
    pipeline = Pipeline([("standard_scaler", StandardScaler()), ("lasso", search)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipeline.fit(np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val]))
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return pipeline, unconverged


def fit_seed(phase: Phase, config: RunConfig, paths: Paths, seed: int, run_name: str, tasks: list,
             backbone_kwargs: dict, checkpoint: str | None = None) -> dict:
    """Fit the per-output pipelines of one seed and score them on the test split.

    Parameters
    ----------
    phase, config, paths, seed, run_name : the phase, run configuration and seed's run.
    tasks : the phase's one task.
    backbone_kwargs : constructor arguments of the configured backbone.
    checkpoint : the pretraining run's best checkpoint whose backbone gives the features (None:
        the backbone as built).

    Returns
    -------
    The same per-seed record as a trained run, plus the chosen alphas and the features file.
    """
    import joblib

    check_simple_regression_tasks(tasks)
    task = tasks[0]
    root = paths.root_dir
    directory = runs.run_dir(root, run_name)
    backbone = build_backbone(config.model.name, config.model.size, **backbone_kwargs)
    if checkpoint:
        load_pretrained_backbone(backbone, checkpoint, config.model.name, config.model.size)
        print(f"[{run_name}] features from the pretrained backbone of {checkpoint}")
    x, y, measured, splits = task_rows(task)
    cache = unified_cache_dir(root, run_name)
    os.makedirs(cache, exist_ok=True)
    key = _digest_arrays([np.frombuffer(f"{FEATURE_FORMAT}{weights_digest(backbone)}".encode(), np.uint8), x])
    feature_path = os.path.join(cache, f"{task.head.name}_backbone_outputs_{key}.npy")
    if os.path.exists(feature_path):
        print(f"[{run_name}] reusing backbone features {feature_path}")
        features = np.load(feature_path, mmap_mode="r")
    else:
        features = backbone_features(backbone, x, phase.hyper.batch_size, feature_path)
    del backbone

    checkpoints = runs.checkpoint_dir(root, run_name)
    os.makedirs(checkpoints, exist_ok=True)
    test = splits["test"]
    predictions = np.full((len(test), len(task.head.output_names)), np.nan, np.float32)
    chosen = {}
    for j, output in enumerate(task.head.output_names):
        rows = {s: idx[measured[idx, j]] for s, idx in splits.items()}
        pipeline, unconverged = fit_output(features[rows["train"]], y[rows["train"], j],
                                           features[rows["val"]], y[rows["val"], j])
        search = pipeline.named_steps["lasso"]
        chosen[output] = {"alpha": float(search.best_params_["alpha"]), "val_R2": float(search.best_score_),
                          "unconverged_fits": unconverged}
        print(f"[{run_name}] {output}: alpha {chosen[output]['alpha']:g}, validation R2 "
              f"{chosen[output]['val_R2']:.3f}" + (f" ({unconverged} Lasso fits hit max_iter)" if unconverged else ""))
        with atomic_path(os.path.join(checkpoints, f"{task.head.name}_{output}_predictor.joblib")) as tmp:
            joblib.dump(pipeline, tmp)
        if len(test):
            predictions[:, j] = pipeline.predict(features[test])
    metrics, path = score_test_predictions(task, y[test], predictions, directory)
    return {"run": run_name, "seed": seed, "lightning_test_metrics": {}, "metrics": metrics,
            "predictions": {task.head.name: path} if path else {}, "simple_regression": chosen,
            "features": feature_path}
