"""An ensemble of trained checkpoints seen as one function of sequences: per-cell predictions of
every member, on discrete codes (any input kind) or on relaxed one-hot inputs (gradients)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from promoter_modelling import sequence as seqlib
from promoter_modelling.errors import InputError


def _head_for_cell(model, path: str, cell: str | None, head: str | None) -> str:
    """The regression head of `model` whose outputs include `cell` (or `head`, checked); without a
    cell, `head` or the model's only regression head."""
    specs = {s.name: s for s in model.head_specs}
    listing = "; ".join(f"{s.name}: {', '.join(s.output_names)}" for s in specs.values())
    if head is not None and head not in specs:
        raise InputError(f"{path}: the model has no head {head!r} (its heads: {listing})")
    if cell is None:
        regression = [name for name, spec in specs.items() if spec.is_regression]
        if head is not None:
            if not specs[head].is_regression:
                raise InputError(f"{path}: head {head!r} is a classifier; choose a regression head (its heads: "
                                 f"{listing})")
            return head
        if len(regression) != 1:
            raise InputError(f"{path}: the model has {len(regression)} regression heads; choose one with --head "
                             f"(its heads: {listing})")
        return regression[0]
    if head is not None:
        candidates = [head]
    else:
        candidates = [name for name, spec in specs.items() if cell in spec.output_names]
    usable = [name for name in candidates if cell in specs[name].output_names and specs[name].is_regression]
    if not usable:
        raise InputError(f"{path}: no regression head of this model predicts cell {cell!r} (its heads: {listing}); "
                         "choose --target_cell among those outputs")
    if len(usable) > 1:
        raise InputError(f"{path}: heads {', '.join(usable)} all predict {cell!r}; choose one with --head")
    chosen = usable[0]
    if len(specs[chosen].output_names) < 2:
        raise InputError(f"{path}: head {chosen!r} predicts only {cell!r}; specificity needs other cells to compare")
    return chosen


class Ensemble:
    """Trained models (a seed ensemble) predicting the cells of one head.

    Parameters
    ----------
    checkpoints : checkpoint paths of this package (one per member).
    target_cell : the cell designs are for; the head predicting it is found in each checkpoint.
        None: no target (attributions, variant effects); the head is `head` or the only
        regression head.
    head : the head to use when several predict `target_cell` (or when there is no target).
    device : torch device the models run on.
    models : already loaded models instead of reading `checkpoints` (their paths still name them).
    """

    def __init__(self, checkpoints: Sequence[str], target_cell: str | None, head: str | None = None,
                 device: torch.device | str = "cpu", models: Sequence | None = None) -> None:
        from promoter_modelling.checkpoints import load_model

        if not checkpoints:
            raise InputError("give at least one checkpoint (--checkpoint FILE or --run_dir saved_models/<run>)")
        self.paths = list(checkpoints)
        self.device = torch.device(device)
        if models is None:
            with warnings.catch_warnings():  # metric objects built with the model warn about memory use
                warnings.filterwarnings("ignore", message=".*save all targets and predictions.*")
                models = [load_model(path) for path in self.paths]
        self.models = [m.to(self.device).eval() for m in models]
        first = self.models[0]
        self.head = _head_for_cell(first, self.paths[0], target_cell, head)
        spec = next(s for s in first.head_specs if s.name == self.head)
        self.cells = list(spec.output_names)
        self.target = self.cells.index(target_cell) if target_cell is not None else None
        self.input_kind = first.input_kind
        self.length = first.sequence_lengths.get(self.head) or getattr(first.backbone, "input_length", None)
        for path, model in zip(self.paths[1:], self.models[1:]):
            other = next((s for s in model.head_specs if s.name == self.head), None)
            if other is None or list(other.output_names) != self.cells:
                raise InputError(f"{path}: head {self.head!r} differs from {self.paths[0]} (an ensemble needs "
                                 "checkpoints trained on the same task)")
            if model.input_kind != self.input_kind:
                raise InputError(f"{path}: reads {model.input_kind} inputs but {self.paths[0]} reads {self.input_kind}")
            length = model.sequence_lengths.get(self.head)
            if length and self.length and length != self.length:
                raise InputError(f"{path}: trained on {length}-bp sequences but {self.paths[0]} on {self.length} bp")
        for model in self.models:
            for param in model.parameters():
                param.requires_grad_(False)

    @property
    def differentiable(self) -> bool:
        """Whether gradients with respect to one-hot inputs exist (one-hot backbones)."""
        return self.input_kind == "onehot"

    def predict(self, codes: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predictions (members, N, cells) for uint8 codes (N, L), read by each member's input recipe."""
        from promoter_modelling.inference import predict_inputs

        codes = np.asarray(codes, dtype=np.uint8)
        out = np.empty((len(self.models), len(codes), len(self.cells)), dtype=np.float32)
        cache: dict[str, np.ndarray] = {}
        for m, model in enumerate(self.models):
            if self.input_kind == "onehot":
                inputs = codes
            else:
                key = json.dumps(model.input_recipe.identity(), sort_keys=True)
                if key not in cache:
                    cache[key] = model.input_recipe.model_inputs(seqlib.decode(codes))
                inputs = cache[key]
            out[m] = predict_inputs(model, inputs, batch_size=batch_size, device=self.device, heads=[self.head])[self.head]
        return out

    def require_one_hot(self, use: str, hint: str = "") -> None:
        """Refuse `use` (e.g. "gradient-based design") in one line unless the members read one-hot inputs."""
        if not self.differentiable:
            raise InputError(f"{self.paths[0]}: {use} needs a one-hot model; this one reads {self.input_kind} "
                             f"inputs{hint}")

    def predict_soft(self, onehot: torch.Tensor, models: Sequence | None = None) -> torch.Tensor:
        """Differentiable predictions (members, N, cells) for (N, L, 4) relaxed one-hot inputs."""
        self.require_one_hot("gradient-based design", " (use --optimizer evolution)")
        members = self.models if models is None else models
        return torch.stack([model(onehot, heads=[self.head])[self.head] for model in members])
