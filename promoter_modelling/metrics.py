"""Per-head evaluation metrics with the published names.

Names follow `{split}_{head}_{output}_{metric}`, `{split}_{head}_mean_{metric}` and
`{split}_{head}_avg_epoch_loss`; the masked multilabel head (ENCODE) reports
`{split}_{head}_{metric}` over all unmasked labels (micro average). A masked regression head
(Malinois MPRA, lentiMPRA, STARR-seq) scores each output on its measured rows only; an output
with no measured row in the epoch is NaN and left out of the mean.
"""

from __future__ import annotations

import torch
import torchmetrics
from torch import nn
from torchmetrics import classification as tmc

from promoter_modelling.heads import (
    BINARY,
    GROUPED_MULTICLASS,
    MASKED_MULTILABEL,
    MASKED_REGRESSION,
    REGRESSION,
    HeadSpec,
)

REGRESSION_METRICS = ("MSE", "MAE", "R2", "PearsonR", "SpearmanR")
CLASSIFICATION_METRICS = ("Accuracy", "Precision", "Recall", "F1")


def _regression_metrics(k: int) -> dict[str, torchmetrics.Metric]:
    return {
        "MSE": torchmetrics.MeanSquaredError(num_outputs=k),
        "MAE": torchmetrics.MeanAbsoluteError(num_outputs=k),
        "R2": torchmetrics.R2Score(multioutput="raw_values"),
        "PearsonR": torchmetrics.PearsonCorrCoef(num_outputs=k),
        "SpearmanR": torchmetrics.SpearmanCorrCoef(num_outputs=k),
    }


def _binary_metrics(k: int) -> dict[str, torchmetrics.Metric]:
    return {
        "Accuracy": tmc.MultilabelAccuracy(num_labels=k, average="none"),
        "Precision": tmc.MultilabelPrecision(num_labels=k, average="none"),
        "Recall": tmc.MultilabelRecall(num_labels=k, average="none"),
        "F1": tmc.MultilabelF1Score(num_labels=k, average="none"),
    }


def _masked_metrics(k: int) -> dict[str, torchmetrics.Metric]:
    kwargs = dict(num_labels=k, average="micro", ignore_index=-1)
    return {
        "Accuracy": tmc.MultilabelAccuracy(**kwargs),
        "Precision": tmc.MultilabelPrecision(**kwargs),
        "Recall": tmc.MultilabelRecall(**kwargs),
        "F1": tmc.MultilabelF1Score(**kwargs),
    }


def _multiclass_metrics(c: int) -> dict[str, torchmetrics.Metric]:
    return {
        "Accuracy": tmc.MulticlassAccuracy(num_classes=c, average="micro"),
        "Precision": tmc.MulticlassPrecision(num_classes=c, average="macro"),
        "Recall": tmc.MulticlassRecall(num_classes=c, average="macro"),
        "F1": tmc.MulticlassF1Score(num_classes=c, average="macro"),
    }


class HeadMetrics(nn.Module):
    """Accumulates one head's metrics over an epoch of one split."""

    def __init__(self, spec: HeadSpec) -> None:
        super().__init__()
        self.spec = spec
        k = len(spec.output_names)
        self.avg_loss = torchmetrics.MeanMetric()
        if spec.kind == REGRESSION:
            self.metrics = nn.ModuleDict(_regression_metrics(k))
        elif spec.kind == BINARY:
            self.metrics = nn.ModuleDict(_binary_metrics(k))
        elif spec.kind == MASKED_MULTILABEL:
            self.metrics = nn.ModuleDict(_masked_metrics(k))
        elif spec.kind == MASKED_REGRESSION:  # each output sees its own rows
            self.metrics = nn.ModuleList([nn.ModuleDict(_regression_metrics(1)) for _ in range(k)])
        else:
            self.metrics = nn.ModuleList([nn.ModuleDict(_multiclass_metrics(spec.num_classes)) for _ in range(k)])

    @torch.no_grad()
    def update(self, y_hat: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, loss: torch.Tensor) -> None:
        """Add one batch (logits or regression outputs `y_hat`, targets `y`)."""
        self.avg_loss.update(loss.detach().float())
        y_hat = y_hat.detach().float()
        kind = self.spec.kind
        if kind == REGRESSION:
            y = y.float()
            if y_hat.shape[1] == 1:
                y_hat, y = y_hat[:, 0], y[:, 0]
            for metric in self.metrics.values():
                metric.update(y_hat, y)
        elif kind == BINARY:
            probs, target = torch.sigmoid(y_hat), y.long()
            for metric in self.metrics.values():
                metric.update(probs, target)
        elif kind == MASKED_REGRESSION:
            y = y.float()
            for i, per_output in enumerate(self.metrics):
                rows = mask[:, i]
                if not bool(rows.any()):
                    continue
                for metric in per_output.values():
                    metric.update(y_hat[rows, i], y[rows, i])
        elif kind == MASKED_MULTILABEL:
            target = torch.where(mask, y.long(), torch.full_like(y, -1, dtype=torch.long))
            probs = torch.sigmoid(y_hat)
            for metric in self.metrics.values():
                metric.update(probs, target)
        else:
            groups = y_hat.reshape(y_hat.shape[0], len(self.spec.output_names), self.spec.num_classes)
            for i, per_output in enumerate(self.metrics):
                for metric in per_output.values():
                    metric.update(groups[:, i], y[:, i].long())

    def compute(self, split: str) -> dict[str, float]:
        """Metric values of the epoch, named as the published code names them."""
        name, outputs = self.spec.name, self.spec.output_names
        values: dict[str, float] = {f"{split}_{name}_avg_epoch_loss": float(self.avg_loss.compute())}
        if self.spec.kind == MASKED_MULTILABEL:
            for met, metric in self.metrics.items():
                values[f"{split}_{name}_{met}"] = float(metric.compute())
            return values
        if self.spec.kind == GROUPED_MULTICLASS:
            per_output = {met: [float(m[met].compute()) for m in self.metrics] for met in CLASSIFICATION_METRICS}
        elif self.spec.kind == MASKED_REGRESSION:
            per_output = {met: [_computed(m[met]) for m in self.metrics] for met in REGRESSION_METRICS}
        else:
            per_output = {met: torch.atleast_1d(metric.compute()).float().tolist() for met, metric in self.metrics.items()}
        mean_over = self.spec.mean_outputs or outputs
        for met, vals in per_output.items():
            for output, val in zip(outputs, vals):
                values[f"{split}_{name}_{output}_{met}"] = val
            chosen = [val for output, val in zip(outputs, vals) if output in mean_over and val == val]
            values[f"{split}_{name}_mean_{met}"] = float(sum(chosen) / len(chosen)) if chosen else float("nan")
        return values

    def reset(self) -> None:
        self.avg_loss.reset()
        modules = self.metrics.values() if isinstance(self.metrics, nn.ModuleDict) else self.metrics
        for module in modules:
            if isinstance(module, nn.ModuleDict):
                for metric in module.values():
                    metric.reset()
            else:
                module.reset()


def _computed(metric: torchmetrics.Metric) -> float:
    """A metric's value, NaN when it saw no row this epoch."""
    if metric.update_count == 0:
        return float("nan")
    return float(torch.atleast_1d(metric.compute())[0])


def metric_names(spec: HeadSpec, split: str) -> list[str]:
    """All metric names a head reports for a split (used by --help and validation)."""
    names = [f"{split}_{spec.name}_avg_epoch_loss"]
    if spec.kind == MASKED_MULTILABEL:
        return names + [f"{split}_{spec.name}_{met}" for met in CLASSIFICATION_METRICS]
    mets = REGRESSION_METRICS if spec.is_regression else CLASSIFICATION_METRICS
    for met in mets:
        names += [f"{split}_{spec.name}_{o}_{met}" for o in spec.output_names]
        names.append(f"{split}_{spec.name}_mean_{met}")
    return names


__all__ = ["HeadMetrics", "metric_names", "REGRESSION_METRICS", "CLASSIFICATION_METRICS", "BINARY"]
