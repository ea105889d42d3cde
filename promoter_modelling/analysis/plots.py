"""Figures of the analyses: sequence logos (drawn with matplotlib glyph paths), effect heatmaps,
top-motif bars and predicted-vs-measured scatter plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from matplotlib.textpath import TextPath  # noqa: E402
from matplotlib.transforms import Affine2D  # noqa: E402

from promoter_modelling.download import atomic_path  # noqa: E402

BASE_COLOURS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}
_GLYPHS: dict[str, TextPath] = {}


def _glyph(base: str) -> TextPath:
    if base not in _GLYPHS:
        _GLYPHS[base] = TextPath((0, 0), base, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    return _GLYPHS[base]


def save_figure(fig, path: str, dpi: int = 150) -> str:
    """Save a figure atomically as PNG and close it; returns the path."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def information_heights(pwm: np.ndarray) -> np.ndarray:
    """(width, 4) letter heights in bits: probability x information content (2 - entropy)."""
    p = np.clip(np.asarray(pwm, dtype=np.float64), 1e-12, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    ic = 2.0 + (p * np.log2(p)).sum(axis=1, keepdims=True)
    return p * np.clip(ic, 0.0, 2.0)


def draw_logo(ax, pwm: np.ndarray, title: str | None = None) -> None:
    """Information-content sequence logo of a (width, 4) matrix on `ax` (letters stacked, tallest on top)."""
    heights = information_heights(pwm)
    for x, column in enumerate(heights):
        y = 0.0
        for i in np.argsort(column, kind="stable"):
            h = float(column[i])
            if h <= 1e-4:
                continue
            base = "ACGT"[i]
            path = _glyph(base)
            ext = path.get_extents()
            transform = (Affine2D().translate(-ext.x0, -ext.y0).scale(0.9 / ext.width, h / ext.height)
                         .translate(x - 0.45, y))
            ax.add_patch(PathPatch(transform.transform_path(path), facecolor=BASE_COLOURS[base], linewidth=0))
            y += h
    ax.set_xlim(-0.6, len(heights) - 0.4)
    ax.set_ylim(0, 2)
    ax.set_yticks([0, 1, 2])
    ax.set_ylabel("bits")
    ax.set_xticks([])
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11, loc="left")


def logo_grid(pwms: list[np.ndarray], titles: list[str], path: str, suptitle: str | None = None,
              dpi: int = 150) -> str | None:
    """One logo per row; returns the path, or None (nothing drawn) when there are no motifs."""
    if not pwms:
        return None
    widest = max(len(p) for p in pwms)
    fig, axes = plt.subplots(len(pwms), 1, figsize=(max(4.0, 0.4 * widest + 1.5), 1.5 * len(pwms)), squeeze=False)
    for ax, pwm, title in zip(axes[:, 0], pwms, titles):
        draw_logo(ax, pwm, title)
        ax.set_xlim(-0.6, widest - 0.4)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def effect_heatmap(effects: pd.DataFrame, significant: pd.DataFrame | None, path: str, title: str,
                   dpi: int = 150) -> str:
    """Heatmap of mean effects (rows: motifs, columns: cells), '*' where significant."""
    values = effects.to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(values))) if values.size and np.isfinite(values).any() else 1.0
    limit = limit if limit > 0 else 1.0
    fig, ax = plt.subplots(figsize=(2.0 + 1.2 * values.shape[1], 1.5 + 0.28 * values.shape[0]))
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(values.shape[1]), effects.columns)
    ax.set_yticks(range(values.shape[0]), effects.index, fontsize=8)
    if significant is not None:
        for (r, c), flag in np.ndenumerate(significant.to_numpy(dtype=bool)):
            if flag:
                ax.text(c, r, "*", ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, label="inserted - baseline")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def top_motif_bars(summary: pd.DataFrame, cells: list[str], path: str, top: int = 10, dpi: int = 150) -> str:
    """Per cell, the `top` strongest positive and negative mean effects with standard errors;
    motifs that are not significant (column `significant`, when present) are drawn pale."""
    fig, axes = plt.subplots(1, len(cells), figsize=(5.0 * len(cells), 0.5 + 0.3 * 2 * top), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        rows = summary[summary["cell"] == cell].sort_values("mean_effect", ascending=False)
        chosen = pd.concat([rows.head(top), rows.tail(top)]).drop_duplicates("motif")
        chosen = chosen.sort_values("mean_effect")
        colours = np.where(chosen["mean_effect"] > 0, "#c0392b", "#2471a3")
        if "significant" in chosen:
            colours = np.where(chosen["significant"].astype(bool), colours,
                               np.where(chosen["mean_effect"] > 0, "#e6b0aa", "#a9cce3"))
        ax.barh(range(len(chosen)), chosen["mean_effect"], xerr=chosen["sem_effect"], color=colours)
        ax.set_yticks(range(len(chosen)), chosen["label"], fontsize=7)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(cell)
        ax.set_xlabel("mean predicted change (pale: not significant)")
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def scatter_panels(panels: list[dict], path: str, title: str, dpi: int = 150) -> str | None:
    """Scatter plots, one per panel dict {x, y, xlabel, ylabel, title}; None when empty."""
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 4.0 * rows), squeeze=False)
    for ax, panel in zip(axes.ravel(), panels):
        ax.scatter(panel["x"], panel["y"], s=4, alpha=0.4, linewidths=0)
        ax.set_xlabel(panel["xlabel"], fontsize=8)
        ax.set_ylabel(panel["ylabel"], fontsize=8)
        ax.set_title(panel["title"], fontsize=9)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi)
