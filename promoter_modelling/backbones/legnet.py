"""LegNet and LegNetLarge (EfficientNet-like blocks with squeeze-and-excitation), published layout.

The squeeze-and-excitation layer contains a low-rank bilinear term: a tensor regression layer
whose (n, n, m) weight is CP-factorised. It is implemented here with the parameter names of
tensorly-torch 0.5.0 (`trl.bias`, `trl.weight.weights`, `trl.weight.factors.factor_{0,1,2}`),
so published checkpoints load, and computed without forming the (n, n) outer product.
LegNet trains with AdamW + OneCycleLR (`optimizer_recipe`, read by the Lightning module).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from promoter_modelling.backbones.base import Backbone


def cp_rank(shape: tuple[int, ...], fraction: float) -> int:
    """CP rank that keeps `fraction` of the dense parameter count (tensorly's rule, rounded half
    to even): round(prod(shape) * fraction / sum(shape)), at least 1."""
    return max(1, int(np.round(np.prod(shape) * fraction / np.sum(shape))))


class CPWeight(nn.Module):
    """CP factorisation W[i, j, k] = sum_r weights[r] * factor_0[i, r] * factor_1[j, r] * factor_2[k, r]."""

    def __init__(self, shape: tuple[int, ...], rank: int) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.rank = rank
        self.weights = nn.Parameter(torch.ones(rank))
        self.factors = nn.ParameterDict({f"factor_{i}": nn.Parameter(torch.empty(size, rank))
                                         for i, size in enumerate(self.shape)})

    def factor(self, i: int) -> torch.Tensor:
        return self.factors[f"factor_{i}"]

    @torch.no_grad()
    def normal_(self, std: float = 1.0) -> CPWeight:
        """Random init whose reconstructed tensor has entries of standard deviation about `std`
        (weights 1, factors N(0, (std / sqrt(rank)) ** (1 / order)))."""
        self.weights.fill_(1.0)
        factor_std = (std / math.sqrt(self.rank)) ** (1.0 / len(self.shape))
        for param in self.factors.values():
            param.normal_(0.0, factor_std)
        return self

    def to_tensor(self) -> torch.Tensor:
        """The dense weight tensor (for checks; the layers never build it)."""
        a, b, c = (self.factor(i) for i in range(3))
        return torch.einsum("r,ir,jr,kr->ijk", self.weights, a, b, c)


class CPTensorRegression(nn.Module):
    """Tensor regression layer (B, n1, n2) -> (B, m) with a CP-factorised (n1, n2, m) weight and a bias."""

    def __init__(self, input_shape: tuple[int, int], output_size: int, rank: float | int = 0.5,
                 bias: bool = True) -> None:
        super().__init__()
        shape = (*input_shape, output_size)
        rank = cp_rank(shape, rank) if isinstance(rank, float) else int(rank)
        self.bias = nn.Parameter(torch.empty(output_size).uniform_(-1.0, 1.0)) if bias else None
        self.weight = CPWeight(shape, rank).normal_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c = (self.weight.factor(i) for i in range(3))
        out = torch.einsum("bij,ir,jr->br", x, a, b) * self.weight.weights
        out = out @ c.t()
        return out + self.bias if self.bias is not None else out

    def bilinear(self, x: torch.Tensor) -> torch.Tensor:
        """forward(x x^T) for a batch of vectors (B, n), in O(B n r) instead of O(B n^2 r)."""
        a, b, c = (self.weight.factor(i) for i in range(3))
        out = ((x @ a) * (x @ b) * self.weight.weights) @ c.t()
        return out + self.bias if self.bias is not None else out


class Bilinear(nn.Module):
    """Pairwise products of the features, (B, n) -> (B, out), through a low-rank tensor regression."""

    def __init__(self, n: int, out: int, rank: float = 0.05, bias: bool = False, init_std: float = 0.00075) -> None:
        super().__init__()
        self.trl = CPTensorRegression((n, n), out, rank=rank, bias=bias)
        self.trl.weight.normal_(init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trl.bilinear(x)


class Concater(nn.Module):
    """cat([x, mod(x)], dim)."""

    def __init__(self, module: nn.Module, dim: int = -1) -> None:
        super().__init__()
        self.mod = module
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.mod(x)), dim=self.dim)


class SELayer(nn.Module):
    """Squeeze-and-excitation over `oup` channels with a bottleneck of inp // reduction features."""

    def __init__(self, inp: int, oup: int, reduction: int = 4) -> None:
        super().__init__()
        mid = inp // reduction
        self.fc = nn.Sequential(
            nn.Linear(oup, mid), nn.SiLU(), nn.Linear(mid, mid),
            Concater(Bilinear(mid, mid // 2, rank=0.5, bias=True)), nn.SiLU(),
            nn.Linear(mid + mid // 2, oup), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=2)).unsqueeze(-1)


def _conv_bn_silu(in_ch: int, out_ch: int, kernel: int, momentum: float, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv1d(in_ch, out_ch, kernel, padding="same", groups=groups, bias=False),
            nn.BatchNorm1d(out_ch, momentum=momentum), nn.SiLU()]


class LegNet(Backbone):
    """One-hot (B, L, 4) -> stem + (inverted residual, resize) blocks -> global average -> (B, block_sizes[-1]).

    Published size: block_sizes (256, 128, 128, 64, 64, 64, 64), ks 7, resize_factor 4,
    filter_per_group 2, se_reduction 4, bn_momentum 0.1; embed 64; 1.85M parameters. `mapper` and
    the `bins` buffer are unused but kept so published state dicts load with strict=True.
    """

    input_kind: ClassVar[str] = "onehot"
    optimizer_recipe: ClassVar[str] = "onecycle"
    default_block_sizes: tuple[int, ...] = (256, 128, 128, 64, 64, 64, 64)

    def __init__(self, seqsize: int = 250, block_sizes: tuple[int, ...] | None = None, ks: int = 7,
                 resize_factor: int = 4, filter_per_group: int = 2, se_reduction: int = 4, final_ch: int = 18,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.block_sizes = tuple(block_sizes) if block_sizes is not None else self.default_block_sizes
        self.seqsize = seqsize
        self.embed_dims = self.block_sizes[-1]
        blocks: dict[str, nn.Module] = {"blc0": nn.Sequential(*_conv_bn_silu(4, self.block_sizes[0], ks, bn_momentum))}
        for i, (prev, size) in enumerate(zip(self.block_sizes[:-1], self.block_sizes[1:])):
            wide = size * resize_factor
            blocks[f"inv_res_blc{i}"] = nn.Sequential(
                *_conv_bn_silu(prev, wide, 1, bn_momentum),
                *_conv_bn_silu(wide, wide, ks, bn_momentum, groups=wide // filter_per_group),
                SELayer(prev, wide, reduction=se_reduction),
                *_conv_bn_silu(wide, prev, 1, bn_momentum),
            )
            blocks[f"resize_blc{i}"] = nn.Sequential(*_conv_bn_silu(2 * prev, size, ks, bn_momentum))
        self.seqextractor = nn.ModuleDict(blocks)
        self.mapper = nn.Sequential(nn.Conv1d(self.block_sizes[-1], final_ch, 1, padding="same"), nn.SiLU())
        self.register_buffer("bins", torch.arange(final_ch))

    def feature_extractor(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4, L) -> (B, block_sizes[-1], L)."""
        x = self.seqextractor["blc0"](x)
        for i in range(len(self.block_sizes) - 1):
            x = torch.cat([x, self.seqextractor[f"inv_res_blc{i}"](x)], dim=1)
            x = self.seqextractor[f"resize_blc{i}"](x)
        return x

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        features = self.feature_extractor(seq.transpose(1, 2))
        return F.adaptive_avg_pool1d(features, 1).squeeze(2)


class LegNetLarge(LegNet):
    """LegNet with block_sizes (1024, 512, 512, 256, 256, 256, 256); embed 256; 33.06M parameters."""

    default_block_sizes = (1024, 512, 512, 256, 256, 256, 256)
