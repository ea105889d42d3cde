"""Malinois: boda2's `BassetBranched` (Gosai et al.), reimplemented without depending on boda.

The layers, their names and their initialisation follow boda2's `boda.model.BassetBranched` and
`boda.model.custom_layers`, so a published state dict loads (strict) as `model.<boda key>`. As
published, sequences shorter than `input_len` (600) are zero-padded on both sides to that length
(boda's own data module pads with construct flanks instead), the branched features are returned
without boda's `output` layer, and the task head is a GroupedLinear (one weight vector per
output, each reading only its own branch).

The loss is boda's L1KLmixed (alpha 1, beta 5). With masked targets it is computed per output on
the measured rows, where the KL term (a softmax over one column) is 0; an output without any
measured row in a batch is skipped, where the published code returned NaN.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from promoter_modelling.backbones.base import Backbone
from promoter_modelling.errors import InputError


# --- boda2 custom layers ----------------------------------------------------------------------
class GroupedLinear(nn.Module):
    """G independent linear maps: (B, G*in) cut into G contiguous blocks -> (B, G*out).

    Block g gives `x_g @ weight[g] + bias[g]`; outputs are concatenated in group order. Weight
    (G, in, out), bias (G, 1, out). Initialised as boda: kaiming-uniform with a=sqrt(3), where
    torch takes fan_in = in*out for the 3-D weight, and bias ~ U(+-1/sqrt(in*out)).
    """

    def __init__(self, in_group_size: int, out_group_size: int, groups: int) -> None:
        super().__init__()
        self.in_group_size = in_group_size
        self.out_group_size = out_group_size
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(groups, in_group_size, out_group_size))
        self.bias = nn.Parameter(torch.empty(groups, 1, out_group_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(3))
        fan_in = self.in_group_size * self.out_group_size  # torch's fan_in of a (G, in, out) tensor
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        blocks = x.reshape(batch, self.groups, self.in_group_size).transpose(0, 1)  # (G, B, in)
        out = torch.bmm(blocks, self.weight) + self.bias  # (G, B, out)
        return out.transpose(0, 1).reshape(batch, self.groups * self.out_group_size)

    def extra_repr(self) -> str:
        return f"in_group_size={self.in_group_size}, out_group_size={self.out_group_size}, groups={self.groups}"


class Conv1dNorm(nn.Module):
    """Conv1d (`conv`) followed, when `batch_norm`, by BatchNorm1d (`bn_layer`, eps 1e-5, momentum 0.1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.bn_layer = nn.BatchNorm1d(out_channels, eps=1e-5, momentum=0.1) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.bn_layer is None else self.bn_layer(x)


class LinearNorm(nn.Module):
    """Linear (`linear`) followed, when `batch_norm`, by BatchNorm1d (`bn_layer`, eps 1e-5, momentum 0.1)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, batch_norm: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.bn_layer = nn.BatchNorm1d(out_features, eps=1e-5, momentum=0.1) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        return x if self.bn_layer is None else self.bn_layer(x)


class RepeatLayer(nn.Module):
    """`x.repeat(*repeats)` (no parameters)."""

    def __init__(self, *repeats: int) -> None:
        super().__init__()
        self.repeats = repeats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(*self.repeats)


class BranchedLinear(nn.Module):
    """(B, in) -> repeated once per branch (`intake`) -> `n_layers` GroupedLinear layers
    (`branched_layer_1..n`), with activation and dropout after every layer but the last ->
    (B, n_branches * out_group_size). Hidden layers have `hidden_group_size` features per branch.
    """

    def __init__(self, in_features: int, hidden_group_size: int, out_group_size: int, n_branches: int = 1,
                 n_layers: int = 1, activation: str = "ReLU", dropout_p: float = 0.5) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"BranchedLinear needs at least one layer, got n_layers={n_layers}")
        self.in_features = in_features
        self.hidden_group_size = hidden_group_size
        self.out_group_size = out_group_size
        self.n_branches = n_branches
        self.n_layers = n_layers
        self.nonlin = getattr(nn, activation)()
        self.dropout = nn.Dropout(p=dropout_p)
        self.intake = RepeatLayer(1, n_branches)
        width = in_features
        for i in range(1, n_layers + 1):
            out = out_group_size if i == n_layers else hidden_group_size
            setattr(self, f"branched_layer_{i}", GroupedLinear(width, out, n_branches))
            width = hidden_group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.intake(x)
        for i in range(1, self.n_layers):
            x = self.dropout(self.nonlin(getattr(self, f"branched_layer_{i}")(x)))
        return getattr(self, f"branched_layer_{self.n_layers}")(x)


def same_padding(kernel_size: int) -> tuple[int, int]:
    """(left, right) zero padding that keeps the length through a stride-1 convolution."""
    left = (kernel_size - 1) // 2
    return max(0, left), max(0, kernel_size - 1 - left)


def flatten_factor(input_len: int) -> int:
    """Sequence positions left after the three max-pools (3, 4, then 4 after padding by 1 on each
    side); boda requires every pool to divide its input exactly."""
    if input_len <= 0 or input_len % 3 or (input_len // 3) % 4 or (input_len // 12 + 2) % 4:
        raise ValueError(f"BassetBranched input_len must be a multiple of 12 with input_len/12 + 2 divisible by 4 "
                         f"(e.g. 600), got {input_len}")
    return (input_len // 12 + 2) // 4


class BassetBranched(nn.Module):
    """boda2's BassetBranched: three conv layers with max-pools, linear layers, and one branch of
    GroupedLinear layers per output. Constructor defaults are boda's; module names (and hence
    state-dict keys) match boda's. `output` (GroupedLinear(branched_channels, 1, n_outputs)) is
    built, as in boda, but `encode`/`decode` do not use it.
    """

    def __init__(self, input_len: int = 600,
                 conv1_channels: int = 300, conv1_kernel_size: int = 19,
                 conv2_channels: int = 200, conv2_kernel_size: int = 11,
                 conv3_channels: int = 200, conv3_kernel_size: int = 7,
                 n_linear_layers: int = 2, linear_channels: int = 1000,
                 linear_activation: str = "ReLU", linear_dropout_p: float = 0.3,
                 n_branched_layers: int = 1, branched_channels: int = 250,
                 branched_activation: str = "ReLU6", branched_dropout_p: float = 0.0,
                 n_outputs: int = 280, use_batch_norm: bool = True) -> None:
        super().__init__()
        self.input_len = input_len
        self.n_linear_layers = n_linear_layers
        self.linear_channels = linear_channels
        self.branched_channels = branched_channels
        self.n_outputs = n_outputs
        self.pad1 = nn.ConstantPad1d(same_padding(conv1_kernel_size), 0.0)
        self.conv1 = Conv1dNorm(4, conv1_channels, conv1_kernel_size, batch_norm=use_batch_norm)
        self.pad2 = nn.ConstantPad1d(same_padding(conv2_kernel_size), 0.0)
        self.conv2 = Conv1dNorm(conv1_channels, conv2_channels, conv2_kernel_size, batch_norm=use_batch_norm)
        self.pad3 = nn.ConstantPad1d(same_padding(conv3_kernel_size), 0.0)
        self.conv3 = Conv1dNorm(conv2_channels, conv3_channels, conv3_kernel_size, batch_norm=use_batch_norm)
        self.pad4 = nn.ConstantPad1d((1, 1), 0.0)
        self.maxpool_3 = nn.MaxPool1d(3, padding=0)
        self.maxpool_4 = nn.MaxPool1d(4, padding=0)
        width = conv3_channels * flatten_factor(input_len)
        for i in range(1, n_linear_layers + 1):
            setattr(self, f"linear{i}", LinearNorm(width, linear_channels, batch_norm=use_batch_norm))
            width = linear_channels
        self.branched = BranchedLinear(width, branched_channels, branched_channels, n_outputs, n_branched_layers,
                                       branched_activation, branched_dropout_p)
        self.output = GroupedLinear(branched_channels, 1, n_outputs)
        self.nonlin = getattr(nn, linear_activation)()
        self.dropout = nn.Dropout(p=linear_dropout_p)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4, input_len) -> flattened conv features (B, conv3_channels * flatten_factor), channel-major."""
        x = self.maxpool_3(self.nonlin(self.conv1(self.pad1(x))))
        x = self.maxpool_4(self.nonlin(self.conv2(self.pad2(x))))
        x = self.nonlin(self.conv3(self.pad3(x)))
        x = self.maxpool_4(self.pad4(x))
        return torch.flatten(x, start_dim=1)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Linear layers (each with activation and dropout), then the branches: (B, branched_channels * n_outputs)."""
        for i in range(1, self.n_linear_layers + 1):
            x = self.dropout(self.nonlin(getattr(self, f"linear{i}")(x)))
        return self.branched(x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """boda's `output` layer: (B, branched_channels * n_outputs) -> (B, n_outputs)."""
        return self.output(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.decode(self.encode(x)))


# --- loss ---------------------------------------------------------------------------------------
def l1_kl_mixed(y_hat: torch.Tensor, y: torch.Tensor, alpha: float = 1.0, beta: float = 5.0) -> torch.Tensor:
    """boda's L1KLmixed with reduction 'mean': (alpha * mean|y_hat - y| + beta * KL) / (alpha + beta).

    KL compares the softmaxes of targets and predictions over the last dimension (the outputs),
    averaged over all elements (torch's 'mean', not 'batchmean'): mean(q * (log q - log p)).
    """
    y = y.to(y_hat.dtype)
    l1 = F.l1_loss(y_hat, y, reduction="mean")
    log_p, log_q = F.log_softmax(y_hat, dim=-1), F.log_softmax(y, dim=-1)
    # torch's KLDivLoss(reduction='mean', log_target=True), written out: torch warns that its
    # 'mean' will change meaning to 'batchmean'; the published loss is the element mean
    kl = (log_q.exp() * (log_q - log_p)).mean()
    return (alpha * l1 + beta * kl) / (alpha + beta)


# --- backbone -----------------------------------------------------------------------------------
class Malinois(Backbone):
    """One-hot (B, L, 4), L <= input_len -> zero-padded to input_len -> BassetBranched encode +
    decode -> (B, branched_channels * n_outputs): one block of `branched_channels` features per
    output. `embed_dims` is the width of one block; the head (`make_head`) is a GroupedLinear
    mapping block t to output t.

    Published size: n_outputs 5 (Malinois MPRA) or 3 (fluorescence), input_len 600, convs
    300/200/200 channels with kernels 19/11/7, one 1000-wide linear layer, three branched layers
    of 140 features: 4,466,705 parameters at n_outputs 5 (including boda's unused `output`
    layer), keys `model.<boda key>`. Trained with the "malinois" optimizer recipe and L1KLmixed.
    """

    input_kind: ClassVar[str] = "onehot"
    optimizer_recipe: ClassVar[str] = "malinois"
    multi_task: ClassVar[bool] = False
    min_train_batch_size: ClassVar[int] = 2  # linear1's BatchNorm cannot normalise one row

    def __init__(self, n_outputs: int = 5, input_len: int = 600, linear_channels: int = 1000,
                 linear_dropout_p: float = 0.11625456877954289, n_branched_layers: int = 3,
                 branched_channels: int = 140, branched_dropout_p: float = 0.5757068086404574,
                 conv1_channels: int = 300, conv1_kernel_size: int = 19,
                 conv2_channels: int = 200, conv2_kernel_size: int = 11,
                 conv3_channels: int = 200, conv3_kernel_size: int = 7,
                 n_linear_layers: int = 1) -> None:
        super().__init__()
        self.n_outputs = n_outputs
        self.input_len = input_len
        self.branched_channels = branched_channels
        self.embed_dims = branched_channels  # per output; forward returns branched_channels * n_outputs
        self.model = BassetBranched(
            input_len=input_len, conv1_channels=conv1_channels, conv1_kernel_size=conv1_kernel_size,
            conv2_channels=conv2_channels, conv2_kernel_size=conv2_kernel_size, conv3_channels=conv3_channels,
            conv3_kernel_size=conv3_kernel_size, n_linear_layers=n_linear_layers, linear_channels=linear_channels,
            linear_activation="ReLU", linear_dropout_p=linear_dropout_p, n_branched_layers=n_branched_layers,
            branched_channels=branched_channels, branched_activation="ReLU", branched_dropout_p=branched_dropout_p,
            n_outputs=n_outputs, use_batch_norm=True)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        length = seq.shape[1]
        if length > self.input_len:
            raise InputError(f"Malinois accepts sequences of at most {self.input_len} bp (input_len) but got "
                             f"{length} bp")
        left = (self.input_len - length) // 2
        x = F.pad(seq.transpose(1, 2), (left, self.input_len - length - left))  # (B, 4, input_len)
        return self.model.decode(self.model.encode(x))

    def make_head(self, num_outputs: int) -> nn.Module:
        """GroupedLinear(branched_channels, 1, n_outputs): branch t -> output t, (B, n_outputs)."""
        if num_outputs != self.n_outputs:
            raise ValueError(f"Malinois was built with n_outputs={self.n_outputs} branches but the task has "
                             f"{num_outputs} outputs; build it with n_outputs={num_outputs}")
        return GroupedLinear(self.branched_channels, 1, num_outputs)

    def regression_loss(self, y_hat: torch.Tensor, y: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
        """L1KLmixed (alpha 1, beta 5). Unmasked: over the whole (B, n) matrix, KL across outputs.
        Masked: summed over outputs, each on its measured rows (one column, so KL is 0); outputs
        without a measured row in the batch are skipped."""
        if mask is None:
            return l1_kl_mixed(y_hat, y)
        mask = mask.bool()
        total = None
        for t in range(y_hat.shape[1]):
            rows = mask[:, t]
            if not bool(rows.any()):
                continue
            term = l1_kl_mixed(y_hat[rows, t:t + 1], y[rows, t:t + 1])
            total = term if total is None else total + term
        return y_hat.sum() * 0.0 if total is None else total
