"""ResNet and MTLuciferWithResidualBlocks: the published residual-convolution backbones.

Both use `blocks.ResidualBlock` (stride 2 and a 1x1 shortcut convolution exactly when the
channel count changes), so the layouts below give the published state-dict keys only while
consecutive widths that the published model changes stay different (e.g. ResNet blocks 2, 4, 6;
the three residual blocks of MTLuciferWithResidualBlocks' stem).
"""

from __future__ import annotations

import torch
from torch import nn

from promoter_modelling.backbones.base import Backbone
from promoter_modelling.backbones.blocks import CNNBlock, ResidualBlock
from promoter_modelling.backbones.mtlucifer import MTLucifer


class ResNet(Backbone):
    """One-hot (B, L, 4) -> initial_conv (k5, padding 1, no bias, no norm or activation) ->
    ResidualBlocks -> global average pool -> linear -> (B, embed_dims). Any L >= 3.

    Published size: initial 512 channels, blocks (512, 512, 768, 768, 1024, 1024, 2048, 2048)
    with k5, embed 1024 (114,537,472 parameters, 54 state-dict keys, no buffers).
    `kernel_size` is that of the residual blocks; the initial convolution is always k5, padding 1.
    """

    def __init__(self, embed_dims: int = 1024, initial_channels: int = 512,
                 block_channels: tuple[int, ...] = (512, 512, 768, 768, 1024, 1024, 2048, 2048),
                 kernel_size: int = 5) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.initial_conv = nn.Conv1d(4, initial_channels, 5, stride=1, padding=1, bias=False)
        blocks: list[nn.Module] = []
        previous = initial_channels
        for width in block_channels:
            blocks.append(ResidualBlock(previous, width, kernel_size))
            previous = width
        self.resnet = nn.Sequential(*blocks)
        self.adaptive_pool = nn.AdaptiveAvgPool1d(1)
        self.linear = nn.Linear(previous, embed_dims)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        x = self.resnet(self.initial_conv(seq.transpose(1, 2)))  # channels-first (B, C, L')
        return self.linear(self.adaptive_pool(x).flatten(1))


class MTLuciferWithResidualBlocks(MTLucifer):
    """MTLucifer whose stem is CNNBlock(4 -> c1, k20, "same") followed by ResidualBlocks
    (c1 -> c1, c1 -> c2, c2 -> D; k5), so the last two halve the length (250 -> 125 -> 63 tokens
    before the CLS token). CLS token, transformer blocks, the shared rotary tables, the
    reference path (`set_naive_attention`) and the bounded CPU inference slicing are MTLucifer's.

    Published size: nucleotide_embed_dims=1024, nheads=8, mlp_dim_ratio=4, cnn_channels=(256, 512),
    num_transformer_blocks=5: 74,131,200 parameters plus the five `rotary_emb.freqs` buffers
    (64 values each; a frozen parameter in the published model), 90 state-dict keys. The
    published keys need c1, c2 and D all different.
    """

    def __init__(self, nucleotide_embed_dims: int = 1024, nheads: int = 8, mlp_dim_ratio: int = 4,
                 cnn_channels: tuple[int, int] = (256, 512), num_transformer_blocks: int = 5) -> None:
        super().__init__(nucleotide_embed_dims, nheads, mlp_dim_ratio, cnn_channels, num_transformer_blocks)
        c1, c2 = cnn_channels
        # Replaces MTLucifer's stem; the attribute keeps its place, so the key order is unchanged.
        self.promoter_cnn = nn.Sequential(
            CNNBlock(4, c1, 20, padding="same"),
            ResidualBlock(c1, c1, 5), ResidualBlock(c1, c2, 5), ResidualBlock(c2, nucleotide_embed_dims, 5),
        )
