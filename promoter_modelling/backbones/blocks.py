"""Building blocks shared by the backbones, with the published parameter names."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CNNBlock(nn.Module):
    """Conv1d -> GELU -> GroupNorm(out/16 groups) -> Dropout(0.1); channels-first (B, C, L)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | str = "same", dilation: int = 1, bias: bool = True,
                 gn_num_groups: int | None = None, gn_group_size: int = 16) -> None:
        super().__init__()
        self.cnn = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                             dilation=dilation, bias=bias)
        groups = gn_num_groups or max(1, out_channels // gn_group_size)
        self.gn = nn.GroupNorm(groups, out_channels)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.gn(F.gelu(self.cnn(x))))


class ResidualBlock(nn.Module):
    """Two convolutions with GroupNorm and a (strided 1x1 when channels change) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 gn_num_groups: int | None = None, gn_group_size: int = 16) -> None:
        super().__init__()
        stride = 2 if in_channels != out_channels else 1
        groups = gn_num_groups or max(1, out_channels // gn_group_size)
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.gn1 = nn.GroupNorm(groups, out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size, padding="same", bias=False)
        self.gn2 = nn.GroupNorm(groups, out_channels)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Conv1d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.relu1(self.gn1(self.conv1(x))))
        return self.relu2(self.gn2(self.shortcut(x) + y))


class RotaryEmbedding(nn.Module):
    """Rotary position embedding with interleaved pairs (as rotary-embedding-torch 0.9).

    `freqs` (dim/2,) is stored under the same state-dict key as that library's parameter.
    """

    def __init__(self, dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.register_buffer("freqs", freqs)

    def cos_sin(self, seq_len: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(seq_len, dim) cosine and sine tables for positions 0..seq_len-1."""
        positions = torch.arange(seq_len, device=device, dtype=self.freqs.dtype)
        angles = torch.outer(positions, self.freqs).repeat_interleave(2, dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Apply a rotary embedding to (..., T, D) given (T, D) tables; rotates only the first
    cos.shape[-1] features."""
    rot_dim = cos.shape[-1]
    x_rot, x_pass = x[..., :rot_dim], x[..., rot_dim:]
    pairs = x_rot.unflatten(-1, (-1, 2))
    half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    out = x_rot * cos + half * sin
    return torch.cat((out, x_pass), dim=-1) if x_pass.shape[-1] else out


class TransformerBlock(nn.Module):
    """Pre-LN transformer block with rotary attention, as published (no attention mask).

    attention: x -> LN1 -> q, k, v (no bias) -> rotary(q, k) -> softmax(q k^T / sqrt(d)) ->
    dropout -> . v -> fc1 -> dropout, added to the block input; then LN2 -> fc2 -> GELU -> fc3
    -> dropout, plus a residual. `naive_attention=True` computes the attention explicitly
    (reference path); the default uses torch's fused scaled_dot_product_attention.
    """

    def __init__(self, d_model: int, nhead: int, mlp_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model {d_model} is not divisible by nhead {nhead}")
        self.num_heads = nhead
        self.head_dim = d_model // nhead
        self.dropout = dropout
        self.naive_attention = False
        self.layer_norm1 = nn.LayerNorm(d_model)
        self.xk = nn.Linear(d_model, d_model, bias=False)
        self.xq = nn.Linear(d_model, d_model, bias=False)
        self.xv = nn.Linear(d_model, d_model, bias=False)
        self.rotary_emb = RotaryEmbedding(self.head_dim)
        self.dropout1 = nn.Dropout(dropout)
        self.fc1 = nn.Linear(d_model, d_model, bias=False)
        self.dropout2 = nn.Dropout(dropout)
        self.layer_norm2 = nn.LayerNorm(d_model)
        self.fc2 = nn.Linear(d_model, mlp_dim)
        self.fc3 = nn.Linear(mlp_dim, d_model)
        self.dropout3 = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)  # (B, H, T, d)

    def forward(self, inputs: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = self.layer_norm1(inputs)
        q, k, v = self._heads(self.xq(x)), self._heads(self.xk(x)), self._heads(self.xv(x))
        cos, sin = rope if rope is not None else self.rotary_emb.cos_sin(x.shape[1], x.device, x.dtype)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        p = self.dropout if self.training else 0.0
        if self.naive_attention:
            weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.head_dim), dim=-1)
            attended = self.dropout1(weights) @ v
        else:
            attended = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        attended = attended.transpose(1, 2).flatten(-2)
        mlp_inputs = self.dropout2(self.fc1(attended)) + inputs
        y = self.dropout3(self.fc3(F.gelu(self.fc2(self.layer_norm2(mlp_inputs)))))
        return y + mlp_inputs
