"""Which motifs does a model attend to? Summaries of a motif insertion analysis
(get_motifs_attended_to_by_model.py).

A motif up-regulates (down-regulates) a cell when the insertion analysis found it significant
there against its shuffled versions (`q_value_vs_null` < alpha) and both its effect and its
effect beyond the shuffles are positive (negative): the `regulation` column of
`<name>_motif_effects.tsv`. Every list below holds only such motifs, so a motif is never both
up and down in a cell, and a motif without a significant effect is in no list.

From `<name>_motif_effects.tsv` (perform_motif_insertion_analysis.py) it writes, under
`<root_dir>/motif_insertion_analysis/`:

- `<name>_summary.tsv`: one row per motif, `<cell>_avg_pred` (mean predicted change on insertion,
  the published "motif influence"), its raw q-value, its effect beyond and q-value against the
  shuffled motifs, its regulation call and its z-score per cell, and, when the published motif
  occurrence table is available, `num_seqs_without_motif` and `<cell>_avg_pred_without_motif`;
- the top `--top_n_motifs_to_print` up- and down-regulating motifs per cell (printed);
- motifs in every cell's top up (down) list, sorted by mean strength: `<name>_common_upreg_motifs.png`
  / `_common_downreg_motifs.png` (logos);
- cell-specific motifs: per cell, among the motifs regulating it, z-scored influence minus the
  largest (for activators) or smallest (for repressors) z-score of the other cells:
  `<name>_cell_specific_motifs.tsv`, `<name>_<cell>_upreg_motifs.png` / `_downreg_motifs.png`;
- with the published `ttest_results.csv` (measured dFE: mean expression of promoters with minus
  without the motif), Spearman correlations of influence and dFE and
  `<name>_motif_influence_vs_dFE.png` / `_include_unsig.png`. Those files (and
  `motif_occurrences.tsv`) are fetched from Google Drive into `<root_data_dir>/common` when
  missing; when they cannot be fetched this part is skipped with a notice.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats

from promoter_modelling.analysis.insertion import ANALYSIS_DIR
from promoter_modelling.errors import DownloadError, InputError

if TYPE_CHECKING:
    from promoter_modelling.run_config import RunConfig

# Published inputs of the dFE comparison (Google Drive ids of the published script).
PUBLISHED_FILES = {
    "motif_occurrences.tsv": "1AL431APt7AYG0fpgZlLCF9neUW1OTUYr",
    "ttest_results.csv": "1y4CHmxMNpPzpSgrIht6rA_hcF3eoJm9z",
    "all_motifs.meme": "1v2H_bYnacPlWSWbqpT3XBnEQzAOLSnZu",
}
Q_THRESHOLD = 0.05


def fetch_published(common_dir: str, filename: str, allow_download: bool = True) -> str | None:
    """Path of a published analysis input in `common_dir`, downloaded when missing; None (with a
    notice) when it is missing and cannot be fetched."""
    from promoter_modelling.download import fetch

    path = os.path.join(common_dir, filename)
    if os.path.exists(path):
        return path
    if not allow_download:
        print(f"notice: {path} not found and downloads are off (--skip_download)")
        return None
    try:
        return fetch(path, gdrive_id=PUBLISHED_FILES[filename])
    except DownloadError as exc:
        print(f"notice: {exc}")
        return None


# --- summaries -----------------------------------------------------------------------------------

def motif_summary(effects: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Wide per-motif table from the long insertion summary.

    Columns per cell: `<cell>_avg_pred` (mean effect), `<cell>_q_value` (raw one-sample q-value),
    `<cell>_effect_vs_null` and `<cell>_q_value_vs_null` (against the motif's shuffles) and
    `<cell>_regulation` ("up", "down" or "none": significant with the sign of the effect, as
    the insertion analysis decided it). Results written before the shuffled-motif null existed
    have no null columns: regulation then follows the raw q-value (< 0.05) and the effect's sign,
    with a notice.
    """
    required = {"motif", "cell", "mean_effect", "q_value"}
    missing = sorted(required - set(effects.columns))
    if missing:
        raise InputError(f"motif insertion results lack column(s) {', '.join(missing)}")
    effects = effects.copy()
    if "regulation" not in effects:
        print("notice: these motif insertion results have no shuffled-motif null (written by an earlier version); "
              "up/down calls use the raw q-value, which marks nearly every motif significant: rerun "
              "perform_motif_insertion_analysis.py with --overwrite")
        significant = effects["significant"] if "significant" in effects else effects["q_value"] < Q_THRESHOLD
        effects["regulation"] = np.where(significant & (effects["mean_effect"] > 0), "up",
                                         np.where(significant & (effects["mean_effect"] < 0), "down", "none"))
    for column in ("effect_vs_null", "q_value_vs_null"):
        if column not in effects:
            effects[column] = np.nan
    cells = list(dict.fromkeys(effects["cell"]))
    parts = [effects.pivot(index="motif", columns="cell", values=value)[cells].add_suffix(suffix)
             for value, suffix in (("mean_effect", "_avg_pred"), ("q_value", "_q_value"),
                                   ("effect_vs_null", "_effect_vs_null"), ("q_value_vs_null", "_q_value_vs_null"),
                                   ("regulation", "_regulation"))]
    labels = effects.drop_duplicates("motif").set_index("motif")
    order = list(dict.fromkeys(effects["motif"]))
    table = pd.concat([labels[["label"]] if "label" in labels else pd.DataFrame(index=labels.index), *parts], axis=1)
    table = table.loc[order].reset_index().rename(columns={"index": "motif"})
    if "label" not in table:
        table.insert(1, "label", table["motif"])
    return table, cells


def qualifying(summary: pd.DataFrame, cell: str, direction: str) -> pd.Series:
    """Motifs that regulate a cell in a direction: significant there, with that sign (bool per row)."""
    return summary[f"{cell}_regulation"] == direction


def ranked(summary: pd.DataFrame, cell: str, n: int, direction: str) -> list[str]:
    """Names of the (at most) `n` motifs with the largest (up) or smallest (down) influence in a
    cell among those that regulate it in that direction (`qualifying`)."""
    column = f"{cell}_avg_pred"
    order = summary[qualifying(summary, cell, direction)].sort_values(column, ascending=direction != "up",
                                                                       kind="stable")
    return order["motif"].head(n).tolist()


def common_motifs(summary: pd.DataFrame, cells: list[str], top: dict[str, dict[str, list[str]]],
                  direction: str) -> list[str]:
    """Motifs in every cell's top-n (up) or bottom-n (down) list (`top[cell][direction]`, from
    `ranked`: significant with that sign in every cell), strongest mean influence first."""
    sets = [set(top[cell][direction]) for cell in cells]
    common = set.intersection(*sets) if sets else set()
    strength = summary.set_index("motif")[[f"{c}_avg_pred" for c in cells]].mean(axis=1)
    return sorted(common, key=lambda m: (strength[m], m), reverse=direction == "up")


def cell_specific(summary: pd.DataFrame, cells: list[str], n: int) -> pd.DataFrame:
    """Per cell and direction, the top-n motifs by z-scored influence minus the extreme z-score of
    the other cells (max for activators, min for repressors), as published, among the motifs
    that regulate the cell in that direction (significant, with that sign)."""
    z = pd.DataFrame({cell: scipy.stats.zscore(summary[f"{cell}_avg_pred"].to_numpy(dtype=float))
                      for cell in cells}, index=summary.index)
    rows = []
    for cell in cells:
        others = [c for c in cells if c != cell]
        value = summary[f"{cell}_avg_pred"]
        for direction, other, ascending in (("up", z[others].max(axis=1), False),
                                            ("down", z[others].min(axis=1), True)):
            keep = qualifying(summary, cell, direction).to_numpy()
            part = pd.DataFrame({"cell": cell, "direction": direction, "motif": summary["motif"],
                                 "label": summary["label"], "avg_pred": value,
                                 "effect_vs_null": summary[f"{cell}_effect_vs_null"],
                                 "q_value_vs_null": summary[f"{cell}_q_value_vs_null"], "zscore": z[cell],
                                 "other_cells_zscore": other, "diff_zscore": z[cell] - other})[keep]
            part = part.sort_values("diff_zscore", ascending=ascending, kind="stable").head(n)
            part.insert(2, "rank", np.arange(1, len(part) + 1))
            if len(part):
                rows.append(part)
    columns = ["cell", "direction", "rank", "motif", "label", "avg_pred", "effect_vs_null", "q_value_vs_null",
               "zscore", "other_cells_zscore", "diff_zscore"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)


def without_motif_effects(per_sequence: pd.DataFrame, sequences: pd.DataFrame, occurrences: pd.DataFrame,
                          cells: list[str]) -> pd.DataFrame:
    """Per motif: promoters (of those analysed and listed in the occurrence table) lacking the
    motif, and the mean insertion effect over only those promoters."""
    if "sequence" not in occurrences.columns:
        raise InputError("motif_occurrences.tsv has no 'sequence' column")
    joined = sequences[["sequence_index", "sequence"]].merge(occurrences, on="sequence", how="inner")
    names = per_sequence["motif"].astype(str)  # once: the column is long (motifs x promoters)
    motifs = [m for m in names.unique() if m in occurrences.columns]
    out = []
    if joined.empty or not motifs:
        return pd.DataFrame(columns=["motif", "num_seqs_without_motif"])
    keep = names.isin(motifs)
    effects = per_sequence[keep]
    for motif, part in effects.groupby(names[keep], sort=False, observed=True):
        absent = joined.loc[joined[motif].to_numpy() == 0, "sequence_index"]
        chosen = part[part["sequence_index"].isin(absent)]
        row = {"motif": motif, "num_seqs_without_motif": int(len(absent))}
        for cell in cells:
            row[f"{cell}_avg_pred_without_motif"] = float(chosen[f"{cell}_effect"].mean()) if len(chosen) else np.nan
        out.append(row)
    return pd.DataFrame(out)


def dfe_comparison(summary: pd.DataFrame, ttest: pd.DataFrame, cells: list[str], prefix: str) -> pd.DataFrame:
    """Spearman correlation of influence and measured dFE per cell (significant motifs, all motifs)
    and the two published scatter figures."""
    from promoter_modelling.analysis import plots

    if "Motif" not in ttest.columns:
        raise InputError("ttest_results.csv has no 'Motif' column")
    merged = summary.merge(ttest, left_on="motif", right_on="Motif", how="inner")
    rows, sig_panels, all_panels = [], [], []
    for cell in cells:
        letter = cell[0]
        dfe, qcol = f"{letter}_dFE", f"{letter}_q_val"
        if dfe not in merged or qcol not in merged:
            print(f"notice: ttest_results.csv has no {dfe}/{qcol} columns; {cell} skipped")
            continue
        for subset, frame, panels in (("significant", merged[merged[qcol] < Q_THRESHOLD], sig_panels),
                                      ("all", merged, all_panels)):
            x, y = frame[f"{cell}_avg_pred"].to_numpy(float), frame[dfe].to_numpy(float)
            rho = float(scipy.stats.spearmanr(x, y)[0]) if len(frame) > 2 else float("nan")
            rows.append({"cell": cell, "motifs": subset, "num_motifs": len(frame), "spearman_rho": rho})
            print(f"{cell} Spearman rho between motif influence and {'significant ' if subset == 'significant' else ''}"
                  f"dFE = {rho:.4f} ({len(frame)} motifs)")
            panels.append({"x": x, "y": y, "xlabel": "motif influence (mean predicted change)",
                           "ylabel": "mean expression with - without motif (dFE)",
                           "title": f"{cell} ({len(frame)} motifs, rho = {rho:.3f})"})
    title = "Motif influence vs. difference in mean expression with and without the motif"
    plots.scatter_panels(sig_panels, f"{prefix}_motif_influence_vs_dFE.png", title + " (q < 0.05)")
    plots.scatter_panels(all_panels, f"{prefix}_motif_influence_vs_dFE_include_unsig.png", title)
    return pd.DataFrame(rows)


# --- the analysis as a command runs it -------------------------------------------------------------

@dataclass(frozen=True)
class AttendedOptions:
    """Options of get_motifs_attended_to_by_model beyond the training flags (which name the models).

    Parameters
    ----------
    top_n_motifs_to_print : motifs printed per cell and direction (>= 1; published 50).
    max_logos : logos drawn per figure (at most top_n_motifs_to_print).
    logo_dpi : resolution of the logo figures.
    meme_file : motif matrices for the logos (None: the file the insertion analysis used).
    keep_homer : keep HOMER motifs (published: dropped).
    skip_download : do not fetch the published occurrence and t-test tables.
    """

    top_n_motifs_to_print: int = 50
    max_logos: int = 20
    logo_dpi: int = 150
    meme_file: str | None = None
    keep_homer: bool = False
    skip_download: bool = False

    def __post_init__(self) -> None:
        if self.top_n_motifs_to_print < 1:
            raise InputError(f"--top_n_motifs_to_print must be at least 1, got {self.top_n_motifs_to_print}")
        if self.max_logos < 0:
            raise InputError(f"--max_logos must be at least 0, got {self.max_logos}")
        if self.logo_dpi < 1:
            raise InputError(f"--logo_dpi must be at least 1, got {self.logo_dpi}")


def _motif_pwms(meme_file: str | None) -> dict[str, np.ndarray]:
    from promoter_modelling.analysis.motifs import read_motifs

    if not meme_file or not os.path.exists(meme_file):
        print(f"notice: motif file {meme_file} not found; logos are not drawn")
        return {}
    return {m.name: m.pwm for m in read_motifs(meme_file)}


def _logos(names: list[str], summary: pd.DataFrame, pwms: dict[str, np.ndarray], path: str, title: str,
           dpi: int) -> str | None:
    from promoter_modelling.analysis import plots

    labels = summary.set_index("motif")["label"]
    names = [n for n in names if n in pwms]
    if not names:
        if os.path.exists(path):  # a figure of an earlier run would show motifs no longer listed
            os.remove(path)
        return None
    return plots.logo_grid([pwms[n] for n in names], [str(labels.get(n, n)) for n in names], path, title, dpi)


def summarise_attended(run: RunConfig, options: AttendedOptions) -> dict:
    """Summarise the motif insertion analysis of the models a run configuration names.

    Parameters
    ----------
    run : the training configuration of the models (its final phase's run name locates the
        results of perform_motif_insertion_analysis, which must exist).
    options : the summary options.

    Returns
    -------
    dict with `summary` (one row per motif), `top` ({cell: {"up"/"down": motif names}}),
    `common_up` / `common_down`, `cell_specific` (when several cells), `dfe_correlations` (when
    the published t-test table is available) and the paths of the written tables and logos.
    """
    from promoter_modelling.config import load_paths
    from promoter_modelling.io_utils import save_table
    from promoter_modelling.planning import final_phase

    paths = load_paths(run.config_path)
    name = final_phase(run).name_format
    directory = os.path.join(paths.root_dir, ANALYSIS_DIR)
    prefix = os.path.join(directory, name)
    effects_path = f"{prefix}_motif_effects.tsv"
    if not os.path.exists(effects_path):
        raise InputError(f"{effects_path} not found: run perform_motif_insertion_analysis.py with the same "
                         "strategy, tasks and model flags first")
    effects = pd.read_csv(effects_path, sep="\t")
    meta = {}
    if os.path.exists(f"{prefix}_motif_insertion.json"):
        with open(f"{prefix}_motif_insertion.json", encoding="utf-8") as handle:
            meta = json.load(handle)
    summary, cells = motif_summary(effects)
    print(f"Number of motifs which were inserted = {len(summary)}")
    if not options.keep_homer:
        homer = summary["motif"].str.contains("HOMER") | summary["label"].str.contains("HOMER")
        if homer.any():
            print(f"dropping {int(homer.sum())} HOMER motifs (as published; --keep_homer keeps them)")
        summary = summary[~homer].reset_index(drop=True)
    if summary.empty:
        raise InputError(f"{effects_path}: no motifs left to summarise")
    n = options.top_n_motifs_to_print
    outputs: dict[str, object] = {}

    common_dir = paths.common_dir
    allow = not options.skip_download
    occurrences_path = fetch_published(common_dir, "motif_occurrences.tsv", allow)
    per_sequence_path = meta.get("outputs", {}).get("per_sequence_path")
    sequences_path = meta.get("outputs", {}).get("sequences_path")
    if occurrences_path and per_sequence_path and sequences_path and os.path.exists(per_sequence_path):
        reader = pd.read_parquet if per_sequence_path.endswith(".parquet") else (lambda p: pd.read_csv(p, sep="\t"))
        extra = without_motif_effects(reader(per_sequence_path), pd.read_csv(sequences_path, sep="\t"),
                                      pd.read_csv(occurrences_path, sep="\t"), cells)
        summary = summary.merge(extra, on="motif", how="left")
        for motif in summary.loc[summary["num_seqs_without_motif"] == 0, "motif"]:
            print(f"notice: {motif} is present in every analysed promoter")
    for cell in cells:
        summary[f"{cell}_avg_pred_zscore"] = scipy.stats.zscore(summary[f"{cell}_avg_pred"].to_numpy(float))
    summary_path = f"{prefix}_summary.tsv"
    save_table(summary, summary_path)
    outputs["summary_path"] = summary_path

    top = {}
    labels = summary.set_index("motif")["label"]
    print("up-/down-regulating: significant (q vs shuffled motifs) with a positive/negative effect")
    for cell in cells:
        top[cell] = {d: ranked(summary, cell, n, d) for d in ("up", "down")}
        print(cell)
        for direction in ("up", "down"):
            names = top[cell][direction]
            total = int(qualifying(summary, cell, direction).sum())
            print(f"  Top {len(names)} of {total} {direction}-regulating motifs: "
                  f"{', '.join(str(labels[m]) for m in names) if names else 'none'}")
    outputs["top"] = top

    ttest_path = fetch_published(common_dir, "ttest_results.csv", allow)
    if ttest_path:
        outputs["dfe_correlations"] = dfe_comparison(summary, pd.read_csv(ttest_path), cells, prefix)
    else:
        print("notice: ttest_results.csv is not available; the comparison with measured dFE is skipped")

    meme_file = options.meme_file or meta.get("parameters", {}).get("meme_file")
    if not meme_file or not os.path.exists(meme_file):
        meme_file = fetch_published(common_dir, "all_motifs.meme", allow) or meme_file
    pwms = _motif_pwms(meme_file)
    limit = min(n, options.max_logos)
    for direction, word in (("up", "upreg"), ("down", "downreg")):
        common = common_motifs(summary, cells, top, direction)
        print(f"{'Up' if direction == 'up' else 'Down'}-regulating motifs common to all cells: "
              f"{', '.join(common) if common else 'none'}")
        outputs[f"common_{direction}"] = common
        outputs[f"common_{word}_logos"] = _logos(common[:limit], summary, pwms,
                                                 f"{prefix}_common_{word}_motifs.png",
                                                 f"{word[:-3]}-regulating motifs common to all cells", options.logo_dpi)
    if len(cells) > 1:
        specific = cell_specific(summary, cells, n)
        specific_path = f"{prefix}_cell_specific_motifs.tsv"
        save_table(specific, specific_path)
        outputs["cell_specific_path"] = specific_path
        outputs["cell_specific"] = specific
        for cell in cells:
            for direction, word in (("up", "upreg"), ("down", "downreg")):
                part = specific[(specific["cell"] == cell) & (specific["direction"] == direction)]
                if part.empty:
                    print(f"Top {direction}-regulating motifs specific to {cell}: none")
                else:
                    print(f"Top {direction}-regulating motifs specific to {cell}")
                    print(part[["rank", "label", "avg_pred", "effect_vs_null", "q_value_vs_null", "zscore",
                                "other_cells_zscore", "diff_zscore"]].to_string(index=False))
                outputs[f"{cell}_{word}_logos"] = _logos(part["motif"].tolist()[:limit], summary, pwms,
                                                         f"{prefix}_{cell}_{word}_motifs.png",
                                                         f"{cell}: {word[:-3]}-regulating motifs specific to the cell",
                                                         options.logo_dpi)
    else:
        print("notice: one output cell only; cell-specific motifs need at least two")
    print(f"summary: {summary_path}")
    outputs["summary"] = summary
    return outputs
