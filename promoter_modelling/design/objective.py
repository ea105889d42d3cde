"""Specificity objectives: how much more a promoter drives expression in one cell than in the others.

Predictions are log2 expression per cell (the fluorescence tasks' targets). For a target cell t
and the other cells o:

- "mean": y_t - mean_o(y_o);
- "max": y_t - max_o(y_o) (the strictest: every other cell must be lower);
- "de": y_t - log2(mean_o(2 ** y_o)), the differential expression target of FluorescenceData_DE
  (log2 of the target's ratio over the mean ratio of the other cells).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from promoter_modelling.errors import InputError

SPECIFICITY_KINDS = ("mean", "max", "de")


def check_kind(kind: str) -> str:
    """The objective name, refused unless it is one of SPECIFICITY_KINDS."""
    if kind not in SPECIFICITY_KINDS:
        raise InputError(f"--objective {kind!r}: choose one of {', '.join(SPECIFICITY_KINDS)}")
    return kind


def specificity_torch(values: torch.Tensor, target: int, kind: str) -> torch.Tensor:
    """Specificity of (..., cells) log2 predictions for cell index `target` (differentiable).

    Parameters
    ----------
    values : (..., C) predictions, C >= 2.
    target : index of the target cell along the last axis.
    kind : "mean", "max" or "de" (see the module docstring).

    Returns
    -------
    (...) specificities.
    """
    cells = values.shape[-1]
    if cells < 2:
        raise InputError("specificity needs predictions for at least two cells")
    others = torch.cat([values[..., :target], values[..., target + 1:]], dim=-1)
    own = values[..., target]
    if kind == "mean":
        return own - others.mean(dim=-1)
    if kind == "max":
        return own - others.amax(dim=-1)
    if kind == "de":
        log_mean = torch.logsumexp(others * math.log(2.0), dim=-1) - math.log(cells - 1)
        return own - log_mean / math.log(2.0)
    raise InputError(f"--objective {kind!r}: choose one of {', '.join(SPECIFICITY_KINDS)}")


def specificity(values: np.ndarray, target: int, kind: str) -> np.ndarray:
    """`specificity_torch` for numpy arrays (float64 arithmetic)."""
    return specificity_torch(torch.as_tensor(np.asarray(values, dtype=np.float64)), target, kind).numpy()
