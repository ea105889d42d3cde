"""Reports on designed promoters: FASTA output, motif hits per design, motif enrichment of the
designs against a background set, and figures (predicted specificity, enriched motif logos).

Motif hits come from the FIMO scan used for motif-count inputs
(`promoter_modelling.tasks.inputs.count_motif_hits`); motif labels and logo matrices from
`promoter_modelling.analysis.motifs`. By default hits are called by their p-value alone
(q_threshold=1), so a sequence's counts do not depend on which other sequences were scanned with
it and the counts of a design set and of a background set can be compared directly.

Enrichment: per motif, the designs with at least one hit against the background sequences with
at least one hit, tested with a one-sided Fisher exact test (hypergeometric upper tail) and
Benjamini-Hochberg across motifs; the effect size is the log2 ratio of mean hits per sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.stats

from promoter_modelling.analysis import motifs as motiflib
from promoter_modelling.analysis import plots
from promoter_modelling.errors import InputError
from promoter_modelling.io_utils import save_text
from promoter_modelling.tasks import inputs as inputlib

ENRICHMENT_COLUMNS = ("motif", "design_fraction", "background_fraction", "design_mean_hits",
                      "background_mean_hits", "log2_enrichment", "p_value", "q_value")


# --- FASTA -------------------------------------------------------------------------------------

def write_fasta(ids: Sequence[str], sequences: Sequence[str], path: str,
                descriptions: Sequence[str] | None = None) -> str:
    """Write sequences as FASTA, atomically (temporary file beside `path`, then rename).

    Parameters
    ----------
    ids : one id per sequence: non-empty, without whitespace (readers take the first word).
    sequences : the sequences, each written on one line.
    path : destination; missing folders are created.
    descriptions : optional text after the id on each header line (`>id description`), one line each.

    Returns
    -------
    str : `path`.

    Raises InputError when the lengths disagree, an id is empty or has whitespace, or a
    description spans several lines.
    """
    ids, sequences = [str(i) for i in ids], [str(s) for s in sequences]
    if len(ids) != len(sequences):
        raise InputError(f"{path}: {len(ids)} ids for {len(sequences)} sequences")
    bad = next((i for i in ids if not i or len(i.split()) != 1 or i.split()[0] != i), None)
    if bad is not None:
        raise InputError(f"{path}: FASTA id {bad!r} is empty or contains whitespace")
    headers = ids
    if descriptions is not None:
        descriptions = [str(d) for d in descriptions]
        if len(descriptions) != len(ids):
            raise InputError(f"{path}: {len(descriptions)} descriptions for {len(ids)} sequences")
        multi = next((d for d in descriptions if "\n" in d or "\r" in d), None)
        if multi is not None:
            raise InputError(f"{path}: FASTA description {multi!r} spans several lines")
        headers = [f"{i} {d}".rstrip() for i, d in zip(ids, descriptions)]
    save_text("".join(f">{h}\n{s}\n" for h, s in zip(headers, sequences)), path)
    return path


# --- motif hits --------------------------------------------------------------------------------

def motif_labels(motifs: Sequence[motiflib.Motif]) -> list[str]:
    """Unique column labels for motifs: each motif's `label` (id and alternative name), its
    `name` where labels collide, and every name if that still leaves duplicates.

    Parameters
    ----------
    motifs : motifs as read by `promoter_modelling.analysis.motifs.read_motifs` (unique names).

    Returns
    -------
    list[str] : one label per motif, in order, all different.
    """
    labels = pd.Series([m.label for m in motifs], dtype=object)
    labels = labels.where(~labels.duplicated(keep=False), pd.Series([m.name for m in motifs], dtype=object))
    return labels.tolist() if labels.is_unique else [m.name for m in motifs]


def motif_hit_table(sequences: Sequence[str], meme_file: str | None = None, p_threshold: float = 1e-4,
                    q_threshold: float = 1.0) -> tuple[pd.DataFrame, list[motiflib.Motif]]:
    """Hits of every motif of a MEME file in each sequence (FIMO scan, both strands).

    Parameters
    ----------
    sequences : equal-length sequences (A, C, G, T, N).
    meme_file : MEME motif file; default: the bundled JASPAR CORE vertebrates file.
    p_threshold : a window is a hit when its p-value is below this.
    q_threshold : Benjamini-Hochberg q-value cut per motif over every window scanned; the default
        1 keeps every hit below `p_threshold`, so counts do not depend on the other sequences.

    Returns
    -------
    (DataFrame, list[Motif]) : int32 counts (sequences x motifs, columns = `motif_labels`, in file
    order) and the motifs in column order (matrices (width, 4) for logos).
    """
    path = meme_file or motiflib.default_meme_file()
    motifs = motiflib.read_motifs(path)
    motif_set = inputlib.read_motifs(path)
    if len(motif_set.names) != len(motifs):
        raise InputError(f"{path}: {len(motifs)} motifs read for labels but {len(motif_set.names)} for scanning")
    counts = inputlib.count_motif_hits(list(sequences), motif_set, p_threshold=p_threshold,
                                       q_threshold=q_threshold, both_strands=True)
    return pd.DataFrame(counts.astype(np.int32), columns=motif_labels(motifs)), motifs


def hit_summary(counts: pd.DataFrame, top: int = 5) -> list[str]:
    """One line per sequence naming the motifs it hits, e.g. `"GATA1 x2; SPI1"`.

    Parameters
    ----------
    counts : hit counts (sequences x motifs), as from `motif_hit_table`.
    top : at most this many motifs per sequence.

    Returns
    -------
    list[str] : per row, motifs with at least one hit, most hits first (ties by label), joined by
    "; " with " xN" after a motif hit N > 1 times; "" for a sequence without hits.
    """
    values = counts.to_numpy()
    rows, cols = np.nonzero(values > 0)
    hits = values[rows, cols]
    labels = np.asarray(counts.columns.astype(str), dtype=object)
    label_rank = np.argsort(np.argsort(labels.astype(str), kind="stable"), kind="stable")
    order = np.lexsort((label_rank[cols], -hits, rows))
    rows, cols, hits = rows[order], cols[order], hits[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = (np.arange(rows.size) - starts) < top
    rows, cols, hits = rows[keep], cols[keep], hits[keep]
    suffix = np.where(hits > 1, np.char.add(" x", hits.astype(np.int64).astype(str)), "")
    items = pd.Series(labels[cols] + suffix.astype(object), dtype=object)
    joined = items.groupby(rows).agg("; ".join)
    return joined.reindex(np.arange(len(counts)), fill_value="").tolist()


# --- enrichment --------------------------------------------------------------------------------

def motif_enrichment(design_counts: pd.DataFrame, background_counts: pd.DataFrame) -> pd.DataFrame:
    """Motifs over-represented in the designs relative to a background set.

    Parameters
    ----------
    design_counts : hit counts of the designs (sequences x motifs).
    background_counts : hit counts of the background sequences, with the same motif columns.

    Returns
    -------
    DataFrame : one row per motif: `motif`, `design_fraction` and `background_fraction` (share of
    sequences with at least one hit), `design_mean_hits`, `background_mean_hits`,
    `log2_enrichment` (log2 of the ratio of mean hits, each plus a pseudocount of half a hit in
    the smaller set, 0.5 / min(n_design, n_background)), `p_value` (one-sided Fisher exact test on
    presence: hypergeometric probability of at least as many designs with a hit), `q_value`
    (Benjamini-Hochberg over motifs); sorted by p_value, then log2_enrichment (largest first),
    then motif.
    """
    if len(design_counts) == 0 or len(background_counts) == 0:
        raise InputError("motif enrichment needs at least one design and one background sequence "
                         f"(got {len(design_counts)} and {len(background_counts)})")
    design_cols, background_cols = list(design_counts.columns), list(background_counts.columns)
    if set(design_cols) != set(background_cols) or len(design_cols) != len(background_cols):
        missing = sorted(set(design_cols) ^ set(background_cols), key=str)
        raise InputError("design and background motif counts have different motifs "
                         f"(e.g. {missing[0] if missing else design_cols[0]!r}); scan both with the same MEME file")
    design = design_counts.to_numpy(dtype=np.float64)
    background = background_counts[design_cols].to_numpy(dtype=np.float64)
    n_design, n_background = design.shape[0], background.shape[0]
    design_present = (design > 0).sum(axis=0)
    background_present = (background > 0).sum(axis=0)
    design_mean, background_mean = design.mean(axis=0), background.mean(axis=0)
    pseudocount = 0.5 / min(n_design, n_background)
    log2_enrichment = np.log2((design_mean + pseudocount) / (background_mean + pseudocount))
    p_value = scipy.stats.hypergeom.sf(design_present - 1, n_design + n_background,
                                       design_present + background_present, n_design)
    p_value = np.clip(p_value, 0.0, 1.0)
    table = pd.DataFrame({
        "motif": design_cols,
        "design_fraction": design_present / n_design,
        "background_fraction": background_present / n_background,
        "design_mean_hits": design_mean,
        "background_mean_hits": background_mean,
        "log2_enrichment": log2_enrichment,
        "p_value": p_value,
        "q_value": inputlib.bh_qvalues(p_value),
    }, columns=list(ENRICHMENT_COLUMNS))
    table = table.sort_values(["p_value", "log2_enrichment", "motif"], ascending=[True, False, True], kind="mergesort")
    return table.reset_index(drop=True)


# --- figures -----------------------------------------------------------------------------------

def plot_specificity(design_values: np.ndarray, training_values: np.ndarray, path: str, target: str,
                     label: str = "specificity") -> str:
    """Histogram of the training promoters' predicted specificity with the designs overlaid
    (step histogram and rug) and a vertical line at the best training promoter.

    Parameters
    ----------
    design_values : predicted specificity of each design.
    training_values : predicted specificity of each training promoter.
    path : PNG to write (atomically).
    target : the target cell, named in the title.
    label : what the values are (x-axis label).

    Returns
    -------
    str : `path`.
    """
    designs = np.asarray(design_values, dtype=np.float64).ravel()
    training = np.asarray(training_values, dtype=np.float64).ravel()
    designs, training = designs[np.isfinite(designs)], training[np.isfinite(training)]
    both = np.concatenate([designs, training])
    bins = np.histogram_bin_edges(both, bins=min(60, max(10, int(np.sqrt(both.size))))) if both.size else 10
    fig, ax = plots.plt.subplots(figsize=(7.0, 4.0))
    if training.size:
        ax.hist(training, bins=bins, density=True, color="#9a9a9a", alpha=0.7,
                label=f"training promoters (n={training.size})")
    if designs.size:
        best = float(training.max()) if training.size else np.inf
        ax.hist(designs, bins=bins, density=True, histtype="step", linewidth=1.8, color="#D62839",
                label=f"designs (n={designs.size}, {int((designs > best).sum())} above best training)")
        ax.plot(designs, np.zeros_like(designs), "|", color="#D62839", markersize=14, markeredgewidth=1.2,
                transform=ax.get_xaxis_transform(), clip_on=False)
    if training.size:
        best = float(training.max())
        ax.axvline(best, color="black", linestyle="--", linewidth=1.2, label=f"best training promoter ({best:.3g})")
    ax.set_xlabel(f"predicted {label}")
    ax.set_ylabel("density")
    ax.set_title(f"{target}: predicted {label} of designs vs training promoters", fontsize=10)
    if training.size or designs.size:
        ax.legend(fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return plots.save_figure(fig, path)


def plot_enriched_logos(enrichment: pd.DataFrame, motifs: list[motiflib.Motif], path: str, top: int = 6,
                        q_threshold: float = 0.05) -> str | None:
    """Logos of the most enriched motifs (q_value <= q_threshold and log2_enrichment > 0).

    Parameters
    ----------
    enrichment : table from `motif_enrichment`.
    motifs : the motifs of the scan (from `motif_hit_table`), matched by their column labels.
    path : PNG to write (atomically).
    top : at most this many logos, in the table's order (most significant first).
    q_threshold : largest q-value drawn.

    Returns
    -------
    str | None : `path`, or None (nothing written) when no motif is enriched.
    """
    chosen = enrichment[(enrichment["q_value"] <= q_threshold) & (enrichment["log2_enrichment"] > 0)].head(top)
    if chosen.empty:
        return None
    by_label = dict(zip(motif_labels(motifs), motifs))
    unknown = [m for m in chosen["motif"] if m not in by_label]
    if unknown:
        raise InputError(f"enriched motif {unknown[0]!r} is not among the {len(motifs)} motifs given")
    titles = [f"{row.motif}  designs {row.design_fraction:.0%} vs background {row.background_fraction:.0%}, "
              f"q={row.q_value:.2g}" for row in chosen.itertuples()]
    pwms = [by_label[m].pwm for m in chosen["motif"]]
    return plots.logo_grid(pwms, titles, path, suptitle="Motifs enriched in the designs")
