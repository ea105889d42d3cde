"""Model-specific inputs derived from sequences (k-mer tokens for DNABERT, motif counts for
MotifBasedFCN), cached next to the task's other arrays."""

from __future__ import annotations

import numpy as np

from promoter_modelling.errors import InputError

INPUT_KINDS = ("onehot", "tokens", "motif_counts")


def build_inputs(kind: str, sequences: list[str], cache_dir: str, options: dict) -> np.ndarray:
    """Inputs of `kind` for `sequences`, in order; cached under cache_dir."""
    raise InputError(f"input kind {kind!r} is not available; expected one of {INPUT_KINDS}")
