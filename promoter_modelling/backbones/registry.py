"""Backbone names -> classes and their sizes.

`full` is the published architecture; `small` is what the demo trains on a CPU in minutes;
`tiny` runs a test in seconds. Parameter names are the same at every size. Adding a backbone:
write its module and add one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from torch import nn

from promoter_modelling.errors import InputError

MODEL_SIZES = ("full", "small", "tiny")


@dataclass(frozen=True)
class BackboneEntry:
    module: str
    cls: str
    sizes: dict = field(default_factory=dict)
    description: str = ""


BACKBONES: dict[str, BackboneEntry] = {
    "MTLucifer": BackboneEntry(
        "promoter_modelling.backbones.mtlucifer", "MTLucifer",
        {"full": {},
         "small": {"nucleotide_embed_dims": 64, "nheads": 4, "cnn_channels": (32, 64), "num_transformer_blocks": 2},
         "tiny": {"nucleotide_embed_dims": 32, "nheads": 2, "cnn_channels": (16, 32), "num_transformer_blocks": 1}},
        "CNN stem + rotary transformer (default)"),
}


def backbone_names() -> list[str]:
    return list(BACKBONES)


def backbone_class(name: str) -> type[nn.Module]:
    entry = BACKBONES.get(name)
    if entry is None:
        raise InputError(f"unknown model {name!r}; known models: {', '.join(backbone_names())}")
    return getattr(importlib.import_module(entry.module), entry.cls)


def backbone_kwargs(name: str, size: str = "full", **overrides) -> dict:
    """Constructor arguments of a backbone at a size, with overrides applied."""
    if size not in MODEL_SIZES:
        raise InputError(f"unknown model size {size!r}; expected one of {', '.join(MODEL_SIZES)}")
    backbone_class(name)
    return {**BACKBONES[name].sizes.get(size, {}), **overrides}


def build_backbone(name: str, size: str = "full", **overrides) -> nn.Module:
    """Instantiate a backbone by name and size."""
    return backbone_class(name)(**backbone_kwargs(name, size, **overrides))
