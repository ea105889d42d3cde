"""PureCNN and PureCNNLarge: a convolutional stack followed by two linear layers.

The flattened features are position-major (position * channels + channel), as published. The
published first linear layer is lazy; here its input width is computed from `seq_len`, so a
state dict loads (strict) without a dummy forward pass.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from promoter_modelling.backbones.base import Backbone
from promoter_modelling.backbones.blocks import CNNBlock
from promoter_modelling.errors import InputError


def output_length(stack: nn.Sequential, length: int) -> int:
    """Sequence length after the convolutions and max-pools of `stack`, computed arithmetically."""
    for module in stack.modules():
        if isinstance(module, nn.Conv1d):
            if module.padding == "same":
                continue
            pad, dil = module.padding[0], module.dilation[0]
            length = (length + 2 * pad - dil * (module.kernel_size[0] - 1) - 1) // module.stride[0] + 1
        elif isinstance(module, nn.MaxPool1d):
            k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            s = module.stride if isinstance(module.stride, int) else module.stride[0]
            length = (length - k) // s + 1
    if length < 1:
        raise InputError(f"sequences of this length are too short for the convolution stack (output length {length})")
    return length


class PureCNN(Backbone):
    """One-hot (B, L, 4) -> pairs of CNNBlocks (k=5, padding 1), each pair followed by a max-pool ->
    flatten -> linear1 -> ReLU -> linear2 -> (B, embed_dims).

    Published size: channels (512, 768, 768, 1024), pools (5, 5), hidden 2048, embed 1024,
    seq_len 250 (linear1 in_features 9216; 29.84M parameters); keys promoter_cnn.{0,1,3,4}.
    """

    input_kind: ClassVar[str] = "onehot"

    def __init__(self, embed_dims: int = 1024, seq_len: int = 250,
                 channels: tuple[int, ...] = (512, 768, 768, 1024), pools: tuple[int, ...] = (5, 5),
                 hidden_dims: int = 2048) -> None:
        super().__init__()
        if len(channels) != 2 * len(pools):
            raise ValueError(f"{type(self).__name__}: expected two channel counts per pool, got {channels} and {pools}")
        self.embed_dims = embed_dims
        self.seq_len = seq_len
        layers: list[nn.Module] = []
        previous = 4
        for i, pool in enumerate(pools):
            for width in channels[2 * i:2 * i + 2]:
                layers.append(CNNBlock(previous, width, 5, padding=1))
                previous = width
            layers.append(nn.MaxPool1d(pool))
        self.promoter_cnn = nn.Sequential(*layers)
        self.linear1 = nn.Linear(output_length(self.promoter_cnn, seq_len) * previous, hidden_dims)
        self.linear2 = nn.Linear(hidden_dims, embed_dims)
        self.relu = nn.ReLU()  # a module, so attribution methods can hook it (no parameters)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        if seq.shape[1] != self.seq_len:
            raise InputError(f"{type(self).__name__} was built for {self.seq_len}-bp inputs (seq_len) but got "
                             f"{seq.shape[1]} bp")
        x = self.promoter_cnn(seq.transpose(1, 2))  # (B, C, L')
        x = x.transpose(1, 2).flatten(1)  # position-major, as published
        return self.linear2(self.relu(self.linear1(x)))

    @property
    def input_length(self) -> int:
        """`seq_len`: linear1's input width is fixed by it, so no other length is accepted."""
        return self.seq_len


class PureCNNLarge(PureCNN):
    """PureCNN with a third pair of CNNBlocks: pools (5, 3, 3), keys promoter_cnn.{0,1,3,4,6,7}.

    Published size: channels (512, 768, 768, 1024, 1024, 1024), linear1 in_features 3072 at 250 bp.
    """

    def __init__(self, embed_dims: int = 1024, seq_len: int = 250,
                 channels: tuple[int, ...] = (512, 768, 768, 1024, 1024, 1024), pools: tuple[int, ...] = (5, 3, 3),
                 hidden_dims: int = 2048) -> None:
        super().__init__(embed_dims, seq_len, channels, pools, hidden_dims)
