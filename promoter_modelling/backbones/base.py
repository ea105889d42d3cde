"""The contract every backbone keeps, declared once.

A backbone encodes a batch of inputs into one feature vector per example. What `forward` takes
depends on the class attribute `input_kind`:

- "onehot": one-hot float (B, L, 4) sequences;
- "tokens": int64 token ids (B, T) (DNABERT 6-mers, built by tasks/inputs.py);
- "motif_counts": float32 motif hit counts (B, num_motifs) (built by tasks/inputs.py).

Whatever the kind, `forward` returns (B, embed_dims) features. `optimizer_recipe` names how the
Lightning module trains the model:

- "adamw": AdamW(lr, weight_decay), no scheduler (most backbones);
- "onecycle": AdamW + OneCycleLR (LegNet);
- "adam": Adam(lr) without weight decay or scheduler (MPRAnn, as published);
- "malinois": Adam(amsgrad, betas (0.866, 0.879), L2 weight decay) + CosineAnnealingWarmRestarts
  (T_0 = 4096) stepped every batch (Malinois, as published).

A backbone may also decide the task heads (`make_head`), replace the regression loss
(`regression_loss`), refuse several heads (`multi_task = False`) or exist only as a fixed feature
extractor for the simple-regression strategies (`embed_dims = None`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

INPUT_KINDS = ("onehot", "tokens", "motif_counts")
OPTIMIZER_RECIPES = ("adamw", "onecycle", "adam", "malinois")


class Backbone(nn.Module):
    """Base class of the backbones: inputs of kind `input_kind` -> features (B, embed_dims).

    Subclasses set `input_kind` / `optimizer_recipe` as class attributes when they differ from the
    defaults, set `self.embed_dims` in `__init__`, and override `input_length` when they accept
    only one sequence length. The base class adds no parameters or buffers, so state dicts are
    exactly those of the subclass.
    """

    input_kind: ClassVar[str] = "onehot"  # one of INPUT_KINDS
    optimizer_recipe: ClassVar[str] = "adamw"  # one of OPTIMIZER_RECIPES
    multi_task: ClassVar[bool] = True  # False: the model predicts the outputs of one task only
    min_train_batch_size: ClassVar[int] = 1  # smaller training batches are skipped (BatchNorm on features: 2)
    features_only: ClassVar[bool] = False  # True: a fixed feature extractor for the simple-regression strategies
    embed_dims: int | None  # width of the features `forward` returns (None: no trainable head fits)

    @property
    def input_length(self) -> int | None:
        """The sequence length the backbone was built for when it accepts only that one, else None."""
        return None

    def make_head(self, num_outputs: int) -> nn.Module:
        """The head that maps this backbone's features (B, embed_dims) to (B, num_outputs)."""
        if self.embed_dims is None:
            raise ValueError(f"{type(self).__name__} has no feature width for a trained head")
        return nn.Linear(self.embed_dims, num_outputs)

    def regression_loss(self, y_hat: torch.Tensor, y: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """The loss of a regression head when this backbone prescribes its own; None: the head's
        default (MSE). `mask` marks the measured entries of masked heads."""
        return None
