"""`promoter-modelling attribute` end to end: load the ensemble, read the sequences, compute the
attributions and write them with logos and a record of what was asked."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict

import numpy as np
import torch

from promoter_modelling.errors import InputError
from promoter_modelling.interpret.attribution import AttributionOptions, Attributions, attribute
from promoter_modelling.io_utils import refuse_other_request, save_json

RECORD = "attribute.json"
ADDITIVITY_TOLERANCE = 1e-3  # largest |sum of contributions - (prediction - mean reference prediction)| accepted


def _request(options: AttributionOptions, checkpoints: Sequence[str], source: dict) -> dict:
    asked = {k: v for k, v in asdict(options).items() if k not in ("progress", "chunk_size", "batch_size")}
    asked["outputs"] = list(options.outputs) if options.outputs else None
    return {"options": asked, "checkpoints": [os.path.abspath(c) for c in checkpoints], "source": source}


def choose_plot_rows(attributions: Attributions, plot_ids: Sequence[str] | None, num_plots: int) -> list[int]:
    """Rows whose logos are drawn: the given ids (unknown ones refused) or the top-predicted."""
    if plot_ids:
        index = {name: i for i, name in enumerate(attributions.ids)}
        unknown = [name for name in plot_ids if name not in index]
        if unknown:
            raise InputError(f"--plot: no sequence with id {', '.join(map(repr, unknown[:3]))} "
                             f"(ids look like {attributions.ids[0]!r})")
        return [index[name] for name in plot_ids]
    order = np.argsort(-attributions.predictions.max(axis=1), kind="stable")
    return order[:num_plots].tolist()


def attribute_to_folder(checkpoints: Sequence[str], read: Callable, options: AttributionOptions, output_dir: str,
                        head: str | None = None, device: torch.device | str = "cpu",
                        plot_ids: Sequence[str] | None = None, num_plots: int = 5,
                        overwrite: bool = False, source: dict | None = None) -> Attributions:
    """Attributions of the sequences `read(ensemble)` returns, written to `output_dir`.

    Parameters
    ----------
    checkpoints : the ensemble's checkpoints (one per seed).
    read : called with the loaded Ensemble; returns `sources.Sequences`.
    options : method, outputs, references, batching, progress.
    output_dir : receives attributions.npz, logos.png and attribute.json (written last).
    head : head to explain when the models have several regression heads.
    plot_ids / num_plots : sequences whose logos are drawn (default: the top-predicted).
    overwrite : replace attributions made with other options.
    source : how the sequences were chosen, recorded in attribute.json (default: unrecorded).

    Returns
    -------
    The Attributions written.
    """
    from promoter_modelling.design.ensemble import Ensemble
    from promoter_modelling.interpret.attribution import check_attributable, output_indices
    from promoter_modelling.interpret.store import plot_logos, save_attributions

    request = _request(options, checkpoints, source or {})
    refuse_other_request(output_dir, RECORD, request, overwrite, "attributions",
                         "attributions of other options, models or sequences")
    ensemble = Ensemble(checkpoints, None, head, device)
    check_attributable(ensemble)
    output_indices(ensemble, options.outputs)
    sequences = read(ensemble)
    print(f"[attribute] {len(ensemble.models)} model(s), head {ensemble.head}, {len(sequences.ids)} sequences, "
          f"{options.method}", file=sys.stderr, flush=True)
    attributions = attribute(ensemble, sequences.codes, sequences.ids, options)
    rows = choose_plot_rows(attributions, plot_ids, num_plots)
    os.makedirs(output_dir, exist_ok=True)
    save_attributions(attributions, os.path.join(output_dir, "attributions.npz"))
    if rows:
        plot_logos(attributions, rows, os.path.join(output_dir, "logos.png"))
    finite = attributions.additivity[np.isfinite(attributions.additivity)]
    if finite.size and finite.max() > ADDITIVITY_TOLERANCE:
        backbone = type(ensemble.models[0].backbone).__name__
        print(f"[attribute] warning: DeepLIFT/SHAP contributions of {int((finite > ADDITIVITY_TOLERANCE).sum())} "
              f"sequence-output pairs miss prediction minus reference by more than {ADDITIVITY_TOLERANCE:g} (largest "
              f"{finite.max():.3g}): {backbone} has operations without an exact DeepLIFT rule (docs/interpretation.md); "
              "--method ism has no such error", file=sys.stderr, flush=True)
    summary = {"sequences": len(attributions.ids), "outputs": attributions.outputs, "head": attributions.head,
               "max_additivity_error": float(finite.max()) if finite.size else None,
               "plotted": [attributions.ids[r] for r in rows]}
    save_json({"request": request, "summary": summary}, os.path.join(output_dir, RECORD))
    return attributions
