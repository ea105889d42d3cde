"""MotifBasedFCN and MotifBasedFCNLarge: fully connected networks on per-sequence motif hit counts.

Inputs are float32 (B, num_motifs) counts from tasks/inputs.py (kind "motif_counts"); the
number of motifs comes from the MEME file scanned, not a fixed 693.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from promoter_modelling.backbones.base import Backbone
from promoter_modelling.errors import InputError


def _mlp(num_motifs: int, widths: tuple[int, ...]) -> nn.Sequential:
    """Linear layers num_motifs -> widths[0] -> ... with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    previous = num_motifs
    for i, width in enumerate(widths):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(previous, width))
        previous = width
    return nn.Sequential(*layers)


class MotifBasedFCN(Backbone):
    """Motif counts (B, num_motifs) -> Linear/ReLU stack -> (B, motif_embed_dims).

    Published size: hidden (2048, 1024, 1024), embed 512; keys motifs_fcn.{0,2,4,6}
    (5.09M parameters with 693 motifs).
    """

    input_kind: ClassVar[str] = "motif_counts"
    default_hidden: tuple[int, ...] = (2048, 1024, 1024)
    default_embed = 512

    def __init__(self, num_motifs: int | None = None, motif_embed_dims: int | None = None,
                 hidden_dims: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if not num_motifs or num_motifs < 1:
            raise InputError(f"{type(self).__name__} needs num_motifs (the number of motifs in the MEME file "
                             "scanned for its inputs); see recipe.InputRecipe.backbone_arguments")
        self.num_motifs = int(num_motifs)
        self.embed_dims = motif_embed_dims or self.default_embed
        hidden = tuple(hidden_dims) if hidden_dims is not None else self.default_hidden
        self.motifs_fcn = _mlp(self.num_motifs, (*hidden, self.embed_dims))

    def forward(self, motifs: torch.Tensor) -> torch.Tensor:
        if motifs.shape[-1] != self.num_motifs:
            raise InputError(f"{type(self).__name__} was built for {self.num_motifs} motifs but the inputs have "
                             f"{motifs.shape[-1]}")
        return self.motifs_fcn(motifs.float())


class MotifBasedFCNLarge(MotifBasedFCN):
    """Published size: hidden (2048, 4096, 4096, 2048, 1024), embed 1024; keys motifs_fcn.{0,2,...,10}
    (38.1M parameters with 693 motifs)."""

    default_hidden = (2048, 4096, 4096, 2048, 1024)
    default_embed = 1024
