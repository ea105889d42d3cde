"""The contract every backbone keeps, declared once.

A backbone encodes a batch of inputs into one feature vector per example. What `forward` takes
depends on the class attribute `input_kind`:

- "onehot": one-hot float (B, L, 4) sequences;
- "tokens": int64 token ids (B, T) (DNABERT 6-mers, built by tasks/inputs.py);
- "motif_counts": float32 motif hit counts (B, num_motifs) (built by tasks/inputs.py).

Whatever the kind, `forward` returns (B, embed_dims) features. `optimizer_recipe` names how the
Lightning module trains the model: "adamw" (AdamW) or "onecycle" (AdamW + OneCycleLR).
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

INPUT_KINDS = ("onehot", "tokens", "motif_counts")
OPTIMIZER_RECIPES = ("adamw", "onecycle")


class Backbone(nn.Module):
    """Base class of the backbones: inputs of kind `input_kind` -> features (B, embed_dims).

    Subclasses set `input_kind` / `optimizer_recipe` as class attributes when they differ from the
    defaults, set `self.embed_dims` in `__init__`, and override `input_length` when they accept
    only one sequence length. The base class adds no parameters or buffers, so state dicts are
    exactly those of the subclass.
    """

    input_kind: ClassVar[str] = "onehot"  # one of INPUT_KINDS
    optimizer_recipe: ClassVar[str] = "adamw"  # one of OPTIMIZER_RECIPES
    embed_dims: int  # width of the features `forward` returns

    @property
    def input_length(self) -> int | None:
        """The sequence length the backbone was built for when it accepts only that one, else None."""
        return None
