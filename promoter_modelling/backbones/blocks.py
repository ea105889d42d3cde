"""Building blocks shared by the backbones, with the published parameter names.

Convolutions run channels-first (B, C, L) end to end. The transformer block keeps the
published parameters (separate xq/xk/xv, fc1, fc2, fc3) and has two paths with equal outputs:
the production path (one q/k/v matmul, rotary on contiguous halves, fused attention, residuals
folded into the matmuls when dropout is off) and the published computation step by step
(`TransformerBlock.naive_attention = True`, the reference path). See docs/performance.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _inplace_ok(x: torch.Tensor) -> bool:
    """Overwriting x is safe when autograd will not need it. Under torch.compile the functional
    form is used instead: the compiler fuses it and handles it without graph breaks."""
    return not (torch.is_grad_enabled() and x.requires_grad) and not torch.compiler.is_compiling()


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout (zero with probability p, scale the rest by 1/(1-p)).

    On CPU the keep mask is drawn with torch.rand_like, about twice as fast as the bernoulli_
    sampler behind F.dropout; elsewhere (and under torch.compile) F.dropout is used.
    """
    if not training or p == 0:
        return x
    if x.device.type != "cpu" or p >= 1 or torch.compiler.is_compiling():
        return F.dropout(x, p, True)
    return x.mul(torch.rand_like(x) >= p).mul_(1.0 / (1.0 - p))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p: float = 0.0) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) with dropout p, times v, for (B, H, T, d) inputs.

    torch's fused kernel when there is no dropout (or off the CPU, where the fused kernels apply
    dropout themselves); with dropout on a CPU, whose fused kernel has no dropout and whose
    fallback adds safety passes over the (T, T) weights, the explicit form.
    """
    if p > 0 and q.device.type == "cpu" and not torch.compiler.is_compiling():
        weights = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2), dim=-1)
        return dropout(weights, p) @ v
    return F.scaled_dot_product_attention(q, k, v, dropout_p=p)


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
        self.activation = nn.GELU()  # a module, so attribution methods can hook it (no parameters)
        # False: every call goes through `activation` (attribution hooks must see every pass)
        self.inplace_activation = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cnn(x)
        y = torch.ops.aten.gelu_(y) if self.inplace_activation and _inplace_ok(y) else self.activation(y)
        return dropout(self.gn(y), self.dropout.p, self.training)


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


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...): the interleaved-pair quarter turn."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Apply a rotary embedding to (..., T, D) given (T, D) tables (or tables that broadcast
    against x), interleaved pairs as in rotary-embedding-torch; rotates only the first
    cos.shape[-1] features."""
    rot_dim = cos.shape[-1]
    x_rot = x[..., :rot_dim]
    out = x_rot * cos + rotate_half(x_rot) * sin
    if rot_dim == x.shape[-1]:
        return out
    return torch.cat((out, x[..., rot_dim:]), dim=-1)


def _rotate_halves(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of (B, T, ..., d) features stored as (even | odd) halves, given
    (T, d/2) tables: (a, b) -> (a cos - b sin, b cos + a sin)."""
    half = x.shape[-1] // 2
    shape = (cos.shape[0],) + (1,) * (x.dim() - 3) + (half,)
    cos, sin = cos.reshape(shape).to(x.dtype), sin.reshape(shape).to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    if _inplace_ok(x):
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        torch.mul(a, cos, out=out[..., :half]).addcmul_(b, sin, value=-1)
        torch.mul(b, cos, out=out[..., half:]).addcmul_(a, sin)
        return out
    return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)


class TransformerBlock(nn.Module):
    """Pre-LN transformer block with rotary attention, as published (no attention mask).

    attention: x -> LN1 -> q, k, v (no bias) -> rotary(q, k) -> softmax(q k^T / sqrt(d)) ->
    dropout -> . v -> fc1 -> dropout, added to the block input; then LN2 -> fc2 -> GELU -> fc3
    -> dropout, plus a residual.

    Production path: one matmul against the concatenated [xq; xk; xv] weights (cached while
    gradients are off), torch's scaled_dot_product_attention (see `attention`), the residuals
    accumulated by the fc1/fc3 matmuls when dropout is inactive, and the CPU `dropout`
    sampler. The rows of xq and xk are gathered per head as (even features, odd features), so
    the rotary pairs become two contiguous halves and q and k are rotated together with plain
    vectorised arithmetic; q.k is a sum over features and does not depend on their order, so
    the attention is unchanged. The reference path
    (`naive_attention = True`) is the published computation, op for op.
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
        # the reference path's nonlinearities and products as modules (no parameters), so
        # attribution methods (DeepLIFT/SHAP) can hook them; see use_attribution_ops
        self.softmax = nn.Softmax(dim=-1)
        self.activation = nn.GELU()
        self.scores_product: nn.Module | None = None
        self.mix_product: nn.Module | None = None
        self._qkv_cache: tuple[tuple, torch.Tensor] | None = None

    def forward(self, inputs: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if rope is None:
            rope = self.rotary_emb.cos_sin(inputs.shape[1], inputs.device, inputs.dtype)
        if self.naive_attention:
            return self.forward_reference(inputs, rope)
        return self.forward_fast(inputs, rope)

    # --- reference: the published computation -------------------------------------------------
    def forward_reference(self, inputs: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Separate q/k/v projections, explicit softmax(q k^T / sqrt(d)) v, unfused residuals."""
        cos, sin = rope
        x = self.layer_norm1(inputs)
        q, k, v = self._heads(self.xq(x)), self._heads(self.xk(x)), self._heads(self.xv(x))
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        weights = self.softmax(self._product(self.scores_product, q, k.transpose(-1, -2)) / math.sqrt(self.head_dim))
        attended = self._product(self.mix_product, self.dropout1(weights), v).transpose(1, 2).flatten(-2)
        mlp_inputs = self.dropout2(self.fc1(attended)) + inputs
        y = self.dropout3(self.fc3(self.activation(self.fc2(self.layer_norm2(mlp_inputs)))))
        return y + mlp_inputs

    @staticmethod
    def _product(module: nn.Module | None, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return left @ right if module is None else module(left, right)

    def use_attribution_ops(self) -> None:
        """Run the reference path with both attention matrix products as tangermeme BilinearOp
        modules, so DeepLIFT/SHAP applies its product rule to them (outputs are unchanged)."""
        from tangermeme.deep_lift_shap import BilinearOp

        self.scores_product, self.mix_product = BilinearOp(), BilinearOp()
        self.naive_attention = True

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)  # (B, H, T, d)

    # --- production -----------------------------------------------------------------------------
    def _pairs_to_halves(self, weight: torch.Tensor) -> torch.Tensor:
        """Reorder q/k projection rows so each head lists its even features, then its odd ones."""
        d = self.head_dim
        return weight.unflatten(0, (self.num_heads, d // 2, 2)).transpose(1, 2).reshape(weight.shape)

    def _fused_weight(self) -> torch.Tensor:
        return torch.cat((self._pairs_to_halves(self.xq.weight), self._pairs_to_halves(self.xk.weight),
                          self.xv.weight), dim=0)

    def qkv_weight(self) -> torch.Tensor:
        """[xq; xk; xv] as one (3D, D) matrix, q and k rows in (even, odd) order per head;
        cached between calls while gradients are off."""
        params = (self.xq.weight, self.xk.weight, self.xv.weight)
        if torch.compiler.is_compiling():
            return self._fused_weight()
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            self._qkv_cache = None
            return self._fused_weight()
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        if self._qkv_cache is None or self._qkv_cache[0] != key:
            # A normal (not inference-mode) tensor, so later grad-enabled calls may use it.
            with torch.inference_mode(False), torch.no_grad():
                self._qkv_cache = (key, self._fused_weight())
        return self._qkv_cache[1]

    def forward_fast(self, inputs: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Fused-projection, fused-attention path; same outputs as `forward_reference`."""
        batch, length, dims = inputs.shape
        p_attention, p_fc1, p_fc3 = (m.p if self.training else 0.0 for m in (self.dropout1, self.dropout2, self.dropout3))
        # Accumulating a residual inside addmm would round the residual stream to the autocast
        # dtype, so the fusion is used only outside autocast.
        autocasting = torch.is_autocast_enabled(inputs.device.type)
        fuse_fc1, fuse_fc3 = p_fc1 == 0 and not autocasting, p_fc3 == 0 and not autocasting
        x = self.layer_norm1(inputs)
        qkv = F.linear(x, self.qkv_weight()).unflatten(-1, (3, self.num_heads, self.head_dim))  # (B, T, 3, H, d)
        qk = _rotate_halves(qkv[:, :, :2], rope[0][:, 0::2], rope[1][:, 0::2])
        q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
        attended = attention(q, k, v, p_attention).transpose(1, 2).reshape(batch * length, dims)
        flat_inputs = inputs.reshape(batch * length, dims)
        if fuse_fc1:
            mlp_inputs = torch.addmm(flat_inputs, attended, self.fc1.weight.t())
        else:
            mlp_inputs = dropout(self.fc1(attended), p_fc1) + flat_inputs
        h = self.fc2(self.layer_norm2(mlp_inputs))
        h = torch.ops.aten.gelu_(h) if _inplace_ok(h) else F.gelu(h)
        if fuse_fc3 and _inplace_ok(mlp_inputs):
            out = mlp_inputs.addmm_(h, self.fc3.weight.t()).add_(self.fc3.bias)  # LN2 has read mlp_inputs
        elif fuse_fc3:
            out = torch.addmm(mlp_inputs, h, self.fc3.weight.t()) + self.fc3.bias
        else:
            out = dropout(self.fc3(h), p_fc3) + mlp_inputs
        return out.view(batch, length, dims)
