"""What a task predicts: its head specification and loss.

A HeadSpec fully describes one prediction head (name, outputs, kind), so a checkpoint that
stores the specs can rebuild the model, its losses and its metrics without the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

REGRESSION = "regression"
BINARY = "binary"
MASKED_MULTILABEL = "masked_multilabel"
MASKED_REGRESSION = "masked_regression"
GROUPED_MULTICLASS = "grouped_multiclass"
KINDS = (REGRESSION, BINARY, MASKED_MULTILABEL, MASKED_REGRESSION, GROUPED_MULTICLASS)


@dataclass
class HeadSpec:
    """One task's head.

    kind: regression (MSE), binary (BCE per output), masked_multilabel (BCE on mask==True
    entries only), masked_regression (MSE on mask==True entries only: assays where not every
    output was measured for every sequence; missing targets are NaN), grouped_multiclass (one
    cross-entropy per output over `num_classes` logits).
    mean_outputs: outputs averaged into the `<split>_<name>_mean_<metric>` values (default all).
    """

    name: str
    output_names: list[str]
    kind: str = REGRESSION
    num_classes: int = 1
    mean_outputs: list[str] | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"head {self.name}: unknown kind {self.kind!r}; expected one of {KINDS}")
        self.output_names = [str(name) for name in self.output_names]

    @property
    def num_logits(self) -> int:
        """Width of the linear head."""
        if self.kind == GROUPED_MULTICLASS:
            return len(self.output_names) * self.num_classes
        return len(self.output_names)

    @property
    def is_regression(self) -> bool:
        return self.kind in (REGRESSION, MASKED_REGRESSION)

    @property
    def with_mask(self) -> bool:
        return self.kind in (MASKED_MULTILABEL, MASKED_REGRESSION)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HeadSpec:
        return cls(**data)


def head_loss(spec: HeadSpec, y_hat: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Unweighted loss of one head on one batch."""
    if spec.kind == REGRESSION:
        return F.mse_loss(y_hat, y.to(y_hat.dtype))
    if spec.kind == BINARY:
        return F.binary_cross_entropy_with_logits(y_hat, y.to(y_hat.dtype))
    if spec.with_mask:
        if mask is None:
            raise ValueError(f"head {spec.name} needs a mask")
        if not bool(mask.any()):
            return y_hat.sum() * 0.0
        if spec.kind == MASKED_REGRESSION:  # one MSE over every measured (row, output) pair
            return F.mse_loss(y_hat[mask], y[mask].to(y_hat.dtype))
        return F.binary_cross_entropy_with_logits(y_hat[mask], y[mask].to(y_hat.dtype))
    groups = y_hat.reshape(y_hat.shape[0], len(spec.output_names), spec.num_classes)
    targets = y.long()
    return sum(F.cross_entropy(groups[:, i], targets[:, i]) for i in range(len(spec.output_names)))


def head_probabilities(spec: HeadSpec, values: np.ndarray) -> np.ndarray:
    """Turn a head's outputs (N, outputs) into probabilities where the head is a classifier:
    sigmoid for binary and multilabel heads, softmax per output's class group for grouped
    multiclass heads; regression outputs are returned as they are."""
    if spec.kind in (BINARY, MASKED_MULTILABEL):
        return 1.0 / (1.0 + np.exp(-values))
    if spec.kind == GROUPED_MULTICLASS:
        groups = values.reshape(len(values), len(spec.output_names), spec.num_classes)
        groups = np.exp(groups - groups.max(axis=-1, keepdims=True))
        return (groups / groups.sum(axis=-1, keepdims=True)).reshape(values.shape)
    return values
