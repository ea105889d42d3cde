"""Test-set metrics from predictions, per-seed files, summaries across seeds, the results
index across runs, and plots."""

from __future__ import annotations

import os
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.stats  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, precision_score, r2_score, recall_score  # noqa: E402

from promoter_modelling.download import atomic_path  # noqa: E402
from promoter_modelling.io_utils import save_json, save_table  # noqa: E402

SUBSETS = ("highly_expressed", "lowly_expressed", "extreme_expression")


def _regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    if len(y) < 2 or np.all(y == y[0]) or np.all(pred == pred[0]):
        return {"R2": float("nan"), "PearsonR": float("nan"), "SpearmanR": float("nan")}
    return {"R2": float(r2_score(y, pred)), "PearsonR": float(scipy.stats.pearsonr(y, pred)[0]),
            "SpearmanR": float(scipy.stats.spearmanr(y, pred)[0])}


def regression_metrics(y: np.ndarray, pred: np.ndarray, output: str) -> dict[str, float]:
    """R2, Pearson r and Spearman rho of one output, overall and on the highly (> 90th
    percentile), lowly (< 10th) and extreme (either) expressed test promoters."""
    out = {f"{output}_{k}": v for k, v in _regression(y, pred).items()}
    high, low = y > np.percentile(y, 90), y < np.percentile(y, 10)
    for subset, mask in zip(SUBSETS, (high, low, high | low)):
        for key, value in _regression(y[mask], pred[mask]).items():
            out[f"{output}_{subset}_{key}"] = value
    return out


def replicate_concordance(table: pd.DataFrame, output: str) -> dict[str, float]:
    """Agreement of the two replicates' log ratios on the same promoters: the ceiling a model
    can reach on this split."""
    first, second = f"{output}_rep1", f"{output}_rep2"
    if first not in table or second not in table or len(table) < 2:
        return {}
    r1, r2 = table[first].to_numpy(), table[second].to_numpy()
    return {f"{output}_ReplicateConcordancePearsonR": float(scipy.stats.pearsonr(r1, r2)[0]),
            f"{output}_ReplicateConcordanceSpearmanR": float(scipy.stats.spearmanr(r1, r2)[0])}


def classification_metrics(y: np.ndarray, logits: np.ndarray, output: str,
                           numerical: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of sigmoid(logit) > 0.5, also on the top and bottom
    10% of the underlying measurement when it is known."""
    pred = (1.0 / (1.0 + np.exp(-logits)) > 0.5).astype(int)
    y = np.nan_to_num(y).astype(int)

    def scores(mask: np.ndarray) -> dict[str, float]:
        yt, yp = y[mask], pred[mask]
        return {"Accuracy": float(accuracy_score(yt, yp)) if len(yt) else float("nan"),
                "Precision": float(precision_score(yt, yp, zero_division=0)),
                "Recall": float(recall_score(yt, yp, zero_division=0)),
                "F1": float(f1_score(yt, yp, zero_division=0))}

    out = {f"{output}_{k}": v for k, v in scores(np.ones(len(y), dtype=bool)).items()}
    if numerical is not None:
        high, low = numerical >= np.percentile(numerical, 90), numerical <= np.percentile(numerical, 10)
        for subset, mask in (("highly_expressed", high), ("lowly_expressed", low)):
            out.update({f"{output}_{subset}_{k}": v for k, v in scores(mask).items()})
    return out


def summarise(per_seed: list[dict[str, float]], args: dict, seeds: list[int]) -> tuple[dict, pd.DataFrame]:
    """Summary JSON (args + per metric `_all_`, `_avg_`, `_std_`, `_avg_*_disp`) and a table with
    one row per seed plus mean and std rows."""
    table = pd.DataFrame(per_seed, index=[f"seed_{s}" for s in seeds])
    summary = dict(args)
    with warnings.catch_warnings():  # a metric NaN in every seed (e.g. a cell without test rows) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        summary.update(_seed_statistics(table))
    stats = pd.DataFrame([table.mean(numeric_only=True), table.std(ddof=0, numeric_only=True)], index=["mean", "std"])
    full = pd.concat([table, stats])
    full.index.name = "seed"
    return summary, full


def _seed_statistics(table: pd.DataFrame) -> dict:
    """Per metric column: all values, mean, std and the displayed mean +- std over seeds."""
    summary: dict = {}
    for column in table.columns:
        values = table[column].to_numpy(dtype=float)
        output, _, metric = column.rpartition("_")
        prefix = f"{output}_" if output else ""
        summary[f"{prefix}all_{metric}"] = values.tolist()
        summary[f"{prefix}avg_{metric}"] = float(np.nanmean(values)) if len(values) else float("nan")
        summary[f"{prefix}std_{metric}"] = float(np.nanstd(values)) if len(values) else float("nan")
        avg, std = summary[f"{prefix}avg_{metric}"], summary[f"{prefix}std_{metric}"]
        summary[f"{prefix}avg_{metric}_disp"] = f"{avg:.4f} +- {std:.4f}"
    return summary


def write_summary(directory: str, name: str, summary: dict, table: pd.DataFrame) -> tuple[str, str]:
    json_path = os.path.join(directory, f"{name}.json")
    csv_path = os.path.join(directory, f"{name}.csv")
    save_json(summary, json_path)
    save_table(table, csv_path, sep=",", index=True)
    return json_path, csv_path


def scatter_plot(predictions: pd.DataFrame, outputs: list[str], path: str, title: str) -> str:
    """Predicted vs measured scatter per output with best-fit and y = x lines."""
    fig, axes = plt.subplots(1, len(outputs), figsize=(5 * len(outputs), 5), squeeze=False)
    for ax, output in zip(axes[0], outputs):
        y, pred = predictions[f"y_{output}"].to_numpy(), predictions[f"pred_{output}"].to_numpy()
        measured = ~np.isnan(y)  # masked assays: rows a cell did not measure have no target
        y, pred = y[measured], pred[measured]
        if len(y) == 0:
            ax.set_title(f"{output} (not measured)")
            continue
        ax.scatter(y, pred, s=6, alpha=0.5)
        lims = [min(y.min(), pred.min()), max(y.max(), pred.max())]
        ax.plot(lims, lims, color="black", lw=1, label="y = x")
        if len(y) > 1 and np.ptp(y) > 0:
            slope, intercept = np.polyfit(y, pred, 1)
            ax.plot(lims, [slope * v + intercept for v in lims], color="red", lw=1, label="best fit")
        r = _regression(y, pred)
        ax.set_title(f"{output} (r = {r['PearsonR']:.3f}, rho = {r['SpearmanR']:.3f})")
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted")
        ax.legend(loc="upper left")
    fig.suptitle(f"{title} (test set, n = {len(predictions)})")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


INDEX_FILE = "results_index.csv"


COMPARED_STRATEGIES = ("single_task", "single_task_simple_regression")


def update_results_index(directory: str, row: dict) -> pd.DataFrame:
    """Insert or replace one run's row (keyed by `run`) in summaries/results_index.csv and redraw
    the bar plot of test Pearson/Spearman per run."""
    path = os.path.join(directory, INDEX_FILE)
    index = pd.read_csv(path) if os.path.exists(path) else pd.DataFrame()
    if not index.empty and "run" in index:
        index = index[index["run"] != row["run"]]
    index = pd.concat([index, pd.DataFrame([row])], ignore_index=True).sort_values("run").reset_index(drop=True)
    save_table(index, path, sep=",")
    _index_plot(index, os.path.join(directory, "results_index.png"))
    _model_comparison(index, directory)
    return index


def _model_comparison(index: pd.DataFrame, directory: str) -> None:
    """Table and plot comparing backbones trained single-task (or fitted by simple regression) on
    FluorescenceData across data splits (the architecture comparison)."""
    if "script" not in index or "mean_avg_PearsonR" not in index:
        return
    rows = index[(index["script"] == "train_models_with_different_fluorescence_data_splits")
                 & index["modelling_strategy"].isin(COMPARED_STRATEGIES) & (index["tasks"] == "FluorescenceData")]
    if rows.empty:
        return
    keep = [c for c in ("run", "model_name", "model_size", "modelling_strategy", "num_seeds", "mean_avg_PearsonR",
                        "mean_std_PearsonR", "mean_avg_SpearmanR", "mean_std_SpearmanR") if c in rows]
    table = rows[keep].sort_values("mean_avg_PearsonR", ascending=False)
    save_table(table, os.path.join(directory, "model_comparison.csv"), sep=",")
    how = table["modelling_strategy"].map(lambda s: ", simple regression" if s != "single_task" else "")
    _index_plot(table.assign(run=table["model_name"] + " (" + table["model_size"] + how + ")"),
                os.path.join(directory, "model_comparison.png"))


def _index_plot(index: pd.DataFrame, path: str) -> None:
    cols = [c for c in ("mean_avg_PearsonR", "mean_avg_SpearmanR") if c in index]
    if not cols or index.empty:
        return
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(index)), 4.5))
    x = np.arange(len(index))
    width = 0.8 / len(cols)
    for i, col in enumerate(cols):
        err = index[col.replace("_avg_", "_std_")] if col.replace("_avg_", "_std_") in index else None
        ax.bar(x + i * width, index[col], width, yerr=err, label=col.replace("mean_avg_", "test "))
    ax.set_xticks(x + width * (len(cols) - 1) / 2)
    ax.set_xticklabels(index["run"], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("mean over cells and seeds")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


# --- one run's test predictions -------------------------------------------------------------------

def evaluate_predictions(model, tasks: list, directory: str) -> dict:
    """Write test predictions per head (`test_predictions_<head>.csv`) and compute the target
    assays' metrics from them (fluorescence, Malinois MPRA: tasks with `reports_test_metrics`).
    A masked head's outputs are scored on their measured rows only. Returns {"metrics": ...,
    "predictions": {head: path}}."""
    from promoter_modelling.heads import BINARY, MASKED_REGRESSION, REGRESSION
    from promoter_modelling.inference import predict_loader

    metrics: dict[str, float] = {}
    files: dict[str, str] = {}
    for task in tasks:
        if task.head.kind not in (REGRESSION, BINARY, MASKED_REGRESSION):  # no per-output table: skip the test pass
            continue
        y, pred = predict_loader(model, task.test_dataloader(), task.head.name)
        task_metrics, path = score_test_predictions(task, y, pred, directory)
        metrics.update(task_metrics)
        if path:
            files[task.head.name] = path
    return {"metrics": metrics, "predictions": files}


def score_test_predictions(task, y: np.ndarray, pred: np.ndarray, directory: str) -> tuple[dict[str, float], str | None]:
    """Write one task's test predictions (`test_predictions_<head>.csv`, with ID and sequence for
    target assays) and score them per output when the task `reports_test_metrics`.

    Parameters
    ----------
    task : the task data module whose test split `y` and `pred` (N, outputs) cover, in order.
    y, pred : targets (NaN where not measured) and predictions.
    directory : the run's directory.

    Returns
    -------
    (metrics, path of the CSV or None when the test split is empty)
    """
    from promoter_modelling.heads import BINARY

    head = task.head
    metrics: dict[str, float] = {}
    # all columns at once: heads can have hundreds of outputs
    frame = pd.DataFrame({**{f"y_{o}": y[:, i] for i, o in enumerate(head.output_names)},
                          **{f"pred_{o}": pred[:, i] for i, o in enumerate(head.output_names)}})
    if task.reports_test_metrics:
        table = task.split_table("test")
        for column in reversed([c for c in ("ID", "sequence") if c in table]):
            frame.insert(0, column, table[column].to_numpy()[: len(frame)])
        for i, output in enumerate(head.output_names):
            if head.kind == BINARY:
                numerical = table.get(f"numerical_{output}")
                metrics.update(classification_metrics(
                    y[:, i], pred[:, i], output, None if numerical is None else numerical.to_numpy()))
                continue
            measured = ~np.isnan(y[:, i])
            if measured.any():
                metrics.update(regression_metrics(y[measured, i], pred[measured, i], output))
            metrics.update(replicate_concordance(table, output))
    if frame.empty:  # an empty test split
        return metrics, None
    path = os.path.join(directory, f"test_predictions_{head.name}.csv")
    save_table(frame, path, sep=",")
    return metrics, path


# --- a phase's summary across seeds ---------------------------------------------------------------

def summary_columns(record: dict) -> dict[str, float]:
    """The metrics of one seed's record that go into the summary."""
    if record["metrics"]:
        return dict(record["metrics"])
    return {k[len("test_"):]: v for k, v in record["lightning_test_metrics"].items() if "_mean_" in k}


def best_seed(records: list[dict]) -> dict:
    """The seed record with the best test SpearmanR over the fluorescence outputs."""
    def score(record: dict) -> float:
        values = [v for k, v in record["metrics"].items() if k.endswith("_SpearmanR") and "_expressed" not in k
                  and "extreme" not in k]
        return max(values) if values else -np.inf

    return max(records, key=score)


def index_row(run: str, script: str, strategy: str, model_name: str, model_size: str, tasks: str, num_seeds: int,
              summary: dict) -> dict:
    """One row of the results index: what was trained and its mean test metrics."""
    row = {"run": run, "script": script, "modelling_strategy": strategy, "model_name": model_name,
           "model_size": model_size, "tasks": tasks, "num_seeds": num_seeds}
    for metric in ("R2", "PearsonR", "SpearmanR", "Accuracy"):
        avgs = [v for k, v in summary.items() if k.endswith(f"_avg_{metric}") and k.count("_") == 2]
        stds = [v for k, v in summary.items() if k.endswith(f"_std_{metric}") and k.count("_") == 2]
        if avgs:
            row[f"mean_avg_{metric}"] = float(np.nanmean(avgs))
            row[f"mean_std_{metric}"] = float(np.nanmean(stds))
    row.update({k: v for k, v in summary.items() if k.count("_") == 2 and "_avg_" in k and not k.endswith("_disp")})
    return row


def print_results(name: str, records: list[dict], summary: dict, json_path: str, csv_path: str,
                  checkpoints: list[str]) -> None:
    """The console report of a phase: metrics, summary files and every seed's checkpoint."""
    print()
    print(f"RESULTS: {name} ({len(records)} seed{'s' if len(records) > 1 else ''})")
    for key in sorted(summary):
        if key.endswith("_disp") and "_expressed" not in key and "extreme" not in key:
            print(f"  {key[:-len('_disp')]} = {summary[key]}")
    print(f"Summary: {json_path}")
    print(f"Per-seed table: {csv_path}")
    for record, checkpoint in zip(records, checkpoints):
        print(f"Checkpoint ({record['run']}): {checkpoint}")
