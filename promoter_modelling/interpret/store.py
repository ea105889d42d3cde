"""Attributions on disk: one compressed NumPy archive holding the arrays, the sequences and what
they explain, written atomically; and logo plots of chosen sequences."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence

import numpy as np

from promoter_modelling.download import atomic_path
from promoter_modelling.errors import InputError
from promoter_modelling.interpret.attribution import METHODS, Attributions

FORMAT = "promoter_modelling.attributions/1"
ARRAYS = ("codes", "values", "predictions", "additivity")


def save_attributions(attributions: Attributions, path: str) -> str:
    """Write `attributions` to `path` (.npz, compressed) atomically; returns the path.

    The archive holds `codes` (N, L) uint8, `values` (N, O, L, 4) float32, `predictions` and
    `additivity` (N, O) float32, `ids` and `outputs` (strings) and `meta` (JSON: format, method,
    head, checkpoints)."""
    meta = {"format": FORMAT, "method": attributions.method, "head": attributions.head,
            "checkpoints": attributions.checkpoints}
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, codes=attributions.codes, values=attributions.values,
                            predictions=attributions.predictions, additivity=attributions.additivity,
                            ids=np.array(attributions.ids, dtype=str), outputs=np.array(attributions.outputs, dtype=str),
                            meta=np.array(json.dumps(meta)))
    return path


def load_attributions(path: str) -> Attributions:
    """Read an archive written by `save_attributions`; anything else is refused in one line."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: attributions file not found (write one with promoter-modelling attribute)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            arrays = {name: archive[name] for name in ARRAYS}
            ids, outputs = archive["ids"].tolist(), archive["outputs"].tolist()
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not an attributions file of promoter-modelling attribute ({exc})") from exc
    if meta.get("format") != FORMAT or meta.get("method") not in METHODS:
        raise InputError(f"{path}: not an attributions file of promoter-modelling attribute "
                         f"(format {meta.get('format')!r})")
    values = arrays["values"]
    n, length = arrays["codes"].shape
    if values.shape != (n, len(outputs), length, 4) or len(ids) != n or (arrays["codes"] > 3).any():
        raise InputError(f"{path}: arrays disagree (codes {arrays['codes'].shape} with bases 0-3, values "
                         f"{values.shape}, {len(ids)} ids, {len(outputs)} outputs)")
    return Attributions(meta["method"], meta["head"], outputs, ids, arrays["codes"], values, arrays["predictions"],
                        arrays["additivity"], list(meta.get("checkpoints", [])))


def plot_logos(attributions: Attributions, rows: Sequence[int], path: str) -> str:
    """One figure with a logo per chosen sequence and output: each base's contribution (letters
    above zero add to, below zero subtract from the prediction). Written atomically."""
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    contributions = attributions.hypothetical() * attributions.one_hot()[:, None]
    panels = [(r, o) for r in rows for o in range(len(attributions.outputs))]
    length = attributions.codes.shape[1]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8.0, length / 20), 1.6 * len(panels)), squeeze=False)
    for ax, (r, o) in zip(axes[:, 0], panels):
        logomaker.Logo(pd.DataFrame(contributions[r, o], columns=list("ACGT")), ax=ax, color_scheme="classic")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_ylabel("contribution", fontsize=7)
        ax.set_title(f"{attributions.ids[r]} · {attributions.outputs[o]} · predicted "
                     f"{attributions.predictions[r, o]:.2f} ({attributions.method})", fontsize=8, loc="left")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
