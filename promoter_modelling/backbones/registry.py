"""Backbone names -> classes and their sizes.

`full` is the published architecture; `small` is what the demo trains on a CPU in minutes;
`tiny` runs a test in seconds. Parameter names are the same at every size. Adding a backbone:
write its module and add one entry here.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field

from torch import nn

from promoter_modelling.backbones.dnabert import DNABERT_VOCAB_SIZE
from promoter_modelling.errors import InputError

MODEL_SIZES = ("full", "small", "tiny")


@dataclass(frozen=True)
class BackboneEntry:
    module: str
    cls: str
    sizes: dict = field(default_factory=dict)
    description: str = ""


# small/tiny DNABERT (and its random-init twin): BERT configurations over the DNABERT-6 vocabulary
_DNABERT_SIZES = {
    "full": {},
    "small": {"config": {"vocab_size": DNABERT_VOCAB_SIZE, "hidden_size": 128, "num_hidden_layers": 2,
                         "num_attention_heads": 4, "intermediate_size": 256, "max_position_embeddings": 512}},
    "tiny": {"config": {"vocab_size": DNABERT_VOCAB_SIZE, "hidden_size": 32, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 512}},
}

# small/tiny Enformers: random weights (nothing downloaded), 7 downsamplings as at full size, so a
# 200/250-bp input gives 2 bins and a 1,177-bp one 10
_ENFORMER_SIZES = {
    "full": {},
    "small": {"config": {"dim": 96, "depth": 2, "heads": 4, "attn_dim_key": 16, "num_downsamples": 7,
                         "dim_divisible_by": 16, "output_heads": {"human": 32, "mouse": 16}}},
    "tiny": {"config": {"dim": 48, "depth": 1, "heads": 2, "attn_dim_key": 8, "num_downsamples": 7,
                        "dim_divisible_by": 8, "output_heads": {"human": 16, "mouse": 8}}},
}

BACKBONES: dict[str, BackboneEntry] = {
    "MTLucifer": BackboneEntry(
        "promoter_modelling.backbones.mtlucifer", "MTLucifer",
        {"full": {},
         "small": {"nucleotide_embed_dims": 64, "nheads": 4, "cnn_channels": (32, 64), "num_transformer_blocks": 2},
         "tiny": {"nucleotide_embed_dims": 32, "nheads": 2, "cnn_channels": (16, 32), "num_transformer_blocks": 1}},
        "CNN stem + rotary transformer (default)"),
    "PureCNN": BackboneEntry(
        "promoter_modelling.backbones.cnn", "PureCNN",
        {"full": {},
         "small": {"channels": (128, 64, 64, 64), "hidden_dims": 256, "embed_dims": 128},
         "tiny": {"channels": (16, 16, 16, 32), "hidden_dims": 32, "embed_dims": 16}},
        "4 CNN blocks with max-pools, then two linear layers"),
    "PureCNNLarge": BackboneEntry(
        "promoter_modelling.backbones.cnn", "PureCNNLarge",
        {"full": {},
         "small": {"channels": (128, 64, 64, 64, 64, 64), "hidden_dims": 256, "embed_dims": 128},
         "tiny": {"channels": (16, 16, 16, 32, 32, 32), "hidden_dims": 32, "embed_dims": 16}},
        "6 CNN blocks with max-pools, then two linear layers"),
    "MotifBasedFCN": BackboneEntry(
        "promoter_modelling.backbones.motif_fcn", "MotifBasedFCN",
        {"full": {},
         "small": {"hidden_dims": (256, 128, 128), "motif_embed_dims": 64},
         "tiny": {"hidden_dims": (32, 16, 16), "motif_embed_dims": 16}},
        "fully connected network on motif hit counts (needs --motif_meme_file)"),
    "MotifBasedFCNLarge": BackboneEntry(
        "promoter_modelling.backbones.motif_fcn", "MotifBasedFCNLarge",
        {"full": {},
         "small": {"hidden_dims": (256, 512, 512, 256, 128), "motif_embed_dims": 128},
         "tiny": {"hidden_dims": (32, 32, 32, 32, 16), "motif_embed_dims": 16}},
        "larger fully connected network on motif hit counts (needs --motif_meme_file)"),
    "LegNet": BackboneEntry(
        "promoter_modelling.backbones.legnet", "LegNet",
        {"full": {},
         "small": {"block_sizes": (32, 16, 16, 16)},
         "tiny": {"block_sizes": (16, 16, 16)}},
        "LegNet (EfficientNet-like blocks, squeeze-and-excitation); AdamW + OneCycleLR"),
    "LegNetLarge": BackboneEntry(
        "promoter_modelling.backbones.legnet", "LegNetLarge",
        {"full": {},
         "small": {"block_sizes": (64, 32, 32, 32)},
         "tiny": {"block_sizes": (32, 16, 16)}},
        "LegNet with 4x wider blocks; AdamW + OneCycleLR"),
    "DNABERT": BackboneEntry(
        "promoter_modelling.backbones.dnabert", "DNABERT",
        _DNABERT_SIZES,
        "pretrained DNABERT-6 on 6-mer tokens (--dnabert_path); small/tiny are randomly initialised"),
    "DNABERTRandomInit": BackboneEntry(
        "promoter_modelling.backbones.dnabert", "DNABERTRandomInit",
        _DNABERT_SIZES,
        "DNABERT architecture with random weights (only its configuration is read)"),
    "ResNet": BackboneEntry(
        "promoter_modelling.backbones.resnet", "ResNet",
        {"full": {},
         "small": {"initial_channels": 32, "block_channels": (32, 32, 48, 48, 64, 64, 96, 96), "embed_dims": 64},
         "tiny": {"initial_channels": 8, "block_channels": (8, 8, 16, 16, 24, 24, 32, 32), "embed_dims": 16}},
        "initial convolution, 8 residual blocks, global average pool, linear"),
    "MTLuciferWithResidualBlocks": BackboneEntry(
        "promoter_modelling.backbones.resnet", "MTLuciferWithResidualBlocks",
        {"full": {},
         "small": {"nucleotide_embed_dims": 64, "nheads": 4, "cnn_channels": (16, 32), "num_transformer_blocks": 2},
         "tiny": {"nucleotide_embed_dims": 32, "nheads": 2, "cnn_channels": (8, 16), "num_transformer_blocks": 1}},
        "MTLucifer with a residual-block stem (k20 CNN block + 3 residual blocks)"),
    "MPRAnn": BackboneEntry(
        "promoter_modelling.backbones.mprann", "MPRAnn",
        {"full": {},
         "small": {"channels": (64, 64, 64, 32), "hidden_dims": 64, "embed_dims": 32},
         "tiny": {"channels": (8, 8, 8, 4), "hidden_dims": 16, "embed_dims": 8}},
        "MPRAnn (Agarwal et al. 2023): 4 convolutions, 2 sigmoid linear layers; one input length; Adam"),
    "Malinois": BackboneEntry(
        "promoter_modelling.backbones.malinois", "Malinois",
        {"full": {},
         "small": {"conv1_channels": 64, "conv2_channels": 48, "conv3_channels": 48, "linear_channels": 128,
                   "branched_channels": 32},
         "tiny": {"conv1_channels": 16, "conv2_channels": 16, "conv3_channels": 16, "linear_channels": 32,
                  "branched_channels": 8}},
        "boda2's Basset-branched CNN (one branch per output, one task); L1 + KL loss; Adam (amsgrad) + "
        "cosine warm restarts"),
    **{name: BackboneEntry("promoter_modelling.backbones.enformer", name, _ENFORMER_SIZES, description)
       for name, description in (
           ("Enformer", "pretrained Enformer trunk (--enformer_path) + attention pooling over bins; small/tiny are "
                        "randomly initialised"),
           ("EnformerFrozenBase", "frozen pretrained Enformer trunk (eval mode); only the pooling and head train"),
           ("EnformerFullFrozenBase", "frozen pretrained Enformer's human + mouse outputs per bin, flattened: "
                                      "features for the simple-regression strategies"),
           ("EnformerRandomInit", "Enformer architecture with random weights + attention pooling"))},
}


def backbone_names() -> list[str]:
    return list(BACKBONES)


def backbone_class(name: str) -> type[nn.Module]:
    entry = BACKBONES.get(name)
    if entry is None:
        raise InputError(f"unknown model {name!r}; known models: {', '.join(backbone_names())}")
    return getattr(importlib.import_module(entry.module), entry.cls)


def backbone_parameters(name: str) -> set[str]:
    """Names of the constructor arguments of a backbone (what a run may fill in for it)."""
    return set(inspect.signature(backbone_class(name)).parameters)


def backbone_kwargs(name: str, size: str = "full", **overrides) -> dict:
    """Constructor arguments of a backbone at a size, with overrides applied."""
    if size not in MODEL_SIZES:
        raise InputError(f"unknown model size {size!r}; expected one of {', '.join(MODEL_SIZES)}")
    backbone_class(name)
    return {**BACKBONES[name].sizes.get(size, {}), **overrides}


def build_backbone(name: str, size: str = "full", **overrides) -> nn.Module:
    """Instantiate a backbone by name and size."""
    return backbone_class(name)(**backbone_kwargs(name, size, **overrides))
