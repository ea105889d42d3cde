"""MPRAnn (Agarwal et al. 2023): four convolutions, then two sigmoid linear layers.

The published first linear layer is lazy (its width is fixed by the first batch); here it is a
normal Linear whose input width is computed from `seq_len`, so a state dict loads (strict)
without a dummy forward pass, and other lengths are refused with an InputError.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from promoter_modelling.backbones.base import Backbone
from promoter_modelling.backbones.blocks import dropout
from promoter_modelling.backbones.cnn import output_length
from promoter_modelling.errors import InputError


class MPRAnn(Backbone):
    """One-hot (B, L, 4) -> conv1 -> ReLU -> bn1 -> conv2 -> softmax over channels -> bn2 ->
    pool1 (max, 2) -> dropout1 (0.1) -> conv3 -> softmax -> bn3 -> conv4 -> softmax -> bn4 ->
    pool2 (max, 1: the identity) -> dropout2 (0.1) -> flatten (channel-major) -> fc1 -> sigmoid ->
    dropout3 (0.3) -> fc2 -> sigmoid -> (B, embed_dims). Activations come before the BatchNorms.

    Published size: channels (250, 250, 250, 100), kernels (7, 8, 3, 2) (valid convolutions),
    hidden 300, embed 200: 4,257,550 parameters at seq_len 250 (fc1 in_features 11,500),
    3,507,550 at 200 (9,000); 32 state-dict keys. Trained with Adam, no weight decay or scheduler.
    """

    optimizer_recipe: ClassVar[str] = "adam"

    def __init__(self, seq_len: int = 250, channels: tuple[int, int, int, int] = (250, 250, 250, 100),
                 kernel_sizes: tuple[int, int, int, int] = (7, 8, 3, 2), hidden_dims: int = 300,
                 embed_dims: int = 200) -> None:
        super().__init__()
        if len(channels) != 4 or len(kernel_sizes) != 4:
            raise ValueError(f"{type(self).__name__}: expected four channel counts and four kernel sizes, "
                             f"got {channels} and {kernel_sizes}")
        self.embed_dims = embed_dims
        self.seq_len = seq_len
        c1, c2, c3, c4 = channels
        k1, k2, k3, k4 = kernel_sizes
        self.conv1 = nn.Conv1d(4, c1, k1)
        self.bn1 = nn.BatchNorm1d(c1)
        self.conv2 = nn.Conv1d(c1, c2, k2)
        self.bn2 = nn.BatchNorm1d(c2)
        self.pool1 = nn.MaxPool1d(2, 2)
        self.dropout1 = nn.Dropout(0.1)
        self.conv3 = nn.Conv1d(c2, c3, k3)
        self.bn3 = nn.BatchNorm1d(c3)
        self.conv4 = nn.Conv1d(c3, c4, k4)
        self.bn4 = nn.BatchNorm1d(c4)
        self.pool2 = nn.MaxPool1d(1, 1)
        self.dropout2 = nn.Dropout(0.1)
        length = output_length(nn.Sequential(self.conv1, self.conv2, self.pool1, self.conv3, self.conv4, self.pool2),
                               seq_len)
        self.fc1 = nn.Linear(c4 * length, hidden_dims)
        self.dropout3 = nn.Dropout(0.3)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        # nonlinearities as modules (no parameters), so attribution methods can hook each call
        self.relu = nn.ReLU()
        self.softmax2, self.softmax3, self.softmax4 = nn.Softmax(dim=1), nn.Softmax(dim=1), nn.Softmax(dim=1)
        self.sigmoid1, self.sigmoid2 = nn.Sigmoid(), nn.Sigmoid()

    @property
    def input_length(self) -> int:
        """`seq_len`: fc1's input width is fixed by it, so no other length is accepted."""
        return self.seq_len

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        if seq.shape[1] != self.seq_len:
            raise InputError(f"{type(self).__name__} was built for {self.seq_len}-bp inputs (seq_len) but got "
                             f"{seq.shape[1]} bp")
        x = self.bn1(self.relu(self.conv1(seq.transpose(1, 2))))
        x = self.bn2(self.softmax2(self.conv2(x)))
        x = dropout(self.pool1(x), self.dropout1.p, self.training)
        x = self.bn3(self.softmax3(self.conv3(x)))
        x = self.bn4(self.softmax4(self.conv4(x)))
        x = dropout(self.pool2(x), self.dropout2.p, self.training)
        x = self.sigmoid1(self.fc1(x.flatten(1)))  # channel-major (c * L' + t), as published
        return self.sigmoid2(self.fc2(dropout(x, self.dropout3.p, self.training)))
