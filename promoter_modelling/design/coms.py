"""Conservative objective models (COMs; Trabucco et al. 2021) for sequence design.

A copy of each trained model is fine-tuned on the training promoters with the regression loss
plus a conservatism penalty:

    loss = MSE(f(x), y) + alpha * (mean J(f(x_adv)) - mean J(f(x)))

where J is the design objective (the target cell's specificity) and x_adv are sequences found
by a few straight-through gradient-ascent steps on J from the batch's promoters with the current
model. The penalty pushes the objective down on what the optimiser would propose and up on the
measured promoters, so designs optimised against the conservative copy stay where the model is
backed by data rather than where it extrapolates.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from promoter_modelling.design.objective import specificity_torch
from promoter_modelling.design.search import ascend, start_logits, straight_through
from promoter_modelling.errors import InputError


@dataclass(frozen=True)
class ConservativeOptions:
    """alpha: weight of the conservatism penalty; steps: fine-tuning batches; lr: AdamW step size;
    batch_size: promoters per batch; adversarial_steps / adversarial_lr: gradient-ascent steps and
    step size that find x_adv; seed: batch order."""

    alpha: float = 1.0
    steps: int = 100
    lr: float = 1e-4
    batch_size: int = 32
    adversarial_steps: int = 5
    adversarial_lr: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.alpha >= 0:
            raise InputError(f"--coms_alpha must be zero or positive, got {self.alpha}")
        for name in ("steps", "batch_size", "adversarial_steps"):
            if getattr(self, name) < 1:
                raise InputError(f"--coms_{name} must be at least 1, got {getattr(self, name)}")


def _member_objective(model, head: str, target: int, kind: str):
    def objective(onehot: torch.Tensor) -> torch.Tensor:
        return specificity_torch(model(onehot, heads=[head])[head], target, kind)

    return objective


def adversarial_sequences(objective, start: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """Discrete one-hot sequences (B, L, 4) reached by `steps` straight-through ascent steps on
    `objective` from one-hot `start` (B, L, 4); no gradient flows back to the model."""
    logits = start_logits(start.detach().argmax(dim=-1), 2.0)
    for _ in range(steps):
        onehot, _ = straight_through(logits)
        ascend(logits, objective(onehot), lr)
    return torch.nn.functional.one_hot(logits.detach().argmax(dim=-1), 4).to(start.dtype)


def conservative_copy(model, head: str, codes: np.ndarray, targets: np.ndarray, target: int, kind: str,
                      options: ConservativeOptions, device: torch.device | str = "cpu", progress: bool = False):
    """A conservatively fine-tuned copy of `model` (the model itself is not changed).

    Parameters
    ----------
    model : a trained one-hot model (MultiTaskModule).
    head : the head predicting the cells; `targets` are its outputs.
    codes : training promoters, uint8 (N, L).
    targets : their measured values (N, cells); NaN entries are left out of the loss.
    target, kind : the design objective (target cell index and specificity kind).
    options : penalty weight, steps, learning rates.
    device : where the copy is trained.
    progress : show a progress bar.

    Returns
    -------
    The fine-tuned copy in eval mode, with gradients of its parameters switched off.
    """
    from promoter_modelling.sequence import codes_to_one_hot

    if model.input_kind != "onehot":
        raise InputError(f"conservative models need a one-hot model; {model.hparams.get('model_name')} reads "
                         f"{model.input_kind} inputs")
    device = torch.device(device)
    copy_ = copy.deepcopy(model).to(device).eval()  # eval: no dropout, fixed normalisation statistics
    params = [p for p in copy_.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.0)
    objective = _member_objective(copy_, head, target, kind)
    rng = np.random.default_rng(options.seed)
    y_all = torch.as_tensor(np.asarray(targets, dtype=np.float32))
    steps = range(options.steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="conservative fine-tuning", unit="batch")
    for _ in steps:
        rows = rng.choice(len(codes), size=min(options.batch_size, len(codes)), replace=False)
        x = codes_to_one_hot(torch.as_tensor(codes[rows])).to(device)
        y = y_all[rows].to(device)
        for p in params:
            p.requires_grad_(False)
        x_adv = adversarial_sequences(objective, x, options.adversarial_steps, options.adversarial_lr)
        for p in params:
            p.requires_grad_(True)
        pred = copy_(x, heads=[head])[head]
        measured = ~torch.isnan(y)
        mse = ((pred - torch.nan_to_num(y)) ** 2)[measured].mean()
        penalty = objective(x_adv).mean() - specificity_torch(pred, target, kind).mean()
        loss = mse + options.alpha * penalty
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    for p in copy_.parameters():
        p.requires_grad_(False)
    return copy_.eval()
