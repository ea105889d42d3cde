"""Sequence optimisers, batched over all designs at once.

- `evolve`: greedy substitution search. Each step every design gets `children` mutants with
  `mutations` random substitutions each; a design is replaced by its best mutant when that
  scores higher. Mutants breaking the constraints are never taken. Works with any model (it only
  predicts discrete sequences).
- `gradient_ascent`: normalised gradient steps on per-base logits of a relaxed one-hot (`ascend`:
  the largest gradient entry of each sequence moves by `lr`). The forward pass reads the
  discrete sequence (argmax of the logits) and gradients flow through the softmax
  (straight-through estimator), so the objective is always that of a real sequence; the best
  sequence seen per design that satisfies the constraints is kept. One-hot models only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from promoter_modelling.design.constraints import SequenceConstraints
from promoter_modelling.errors import InputError

OPTIMIZERS = ("gradient", "evolution")


@dataclass(frozen=True)
class SearchOptions:
    """How long and how the optimisers search.

    steps: optimisation steps; lr: largest logit change per step (gradient); init_scale: logit of
    the starting base (gradient; larger stays nearer the start); children / mutations: mutants per
    design and substitutions per mutant (evolution); batch_size: designs per model call."""

    steps: int = 150
    lr: float = 0.5
    init_scale: float = 2.0
    children: int = 8
    mutations: int = 2
    batch_size: int = 256

    def __post_init__(self) -> None:
        for name in ("steps", "children", "mutations", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or not self.init_scale > 0:
            raise InputError(f"--lr and --init_scale must be positive, got {self.lr} and {self.init_scale}")


def _progress(steps: int, desc: str, show: bool):
    if not show:
        return range(steps)
    from tqdm.auto import tqdm

    return tqdm(range(steps), desc=desc, unit="step")


def mutate(codes: np.ndarray, children: int, mutations: int, rng: np.random.Generator) -> np.ndarray:
    """(N * children, L) copies of (N, L) codes, child k of design i at row i * children + k, each
    with `mutations` substitutions at random positions to a random different base."""
    kids = np.repeat(np.asarray(codes, dtype=np.uint8), children, axis=0)
    rows = np.repeat(np.arange(len(kids)), mutations)
    columns = rng.integers(0, kids.shape[1], size=rows.size)
    shift = rng.integers(1, 4, size=rows.size).astype(np.uint8)
    kids[rows, columns] = (kids[rows, columns] + shift) % 4  # another base, uniformly
    return kids


def evolve(start: np.ndarray, score: Callable[[np.ndarray], np.ndarray], options: SearchOptions,
           constraints: SequenceConstraints, rng: np.random.Generator,
           progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Greedy substitution search from `start` (N, L) codes.

    Parameters
    ----------
    start : starting designs (they should satisfy the constraints).
    score : codes (M, L) -> objective (M,), higher is better.
    options : steps, children, mutations.
    constraints : mutants that break them are rejected.
    rng : random generator of the mutations.
    progress : show a progress bar.

    Returns
    -------
    The final designs (N, L) and their scores (N,).
    """
    current = np.array(start, dtype=np.uint8)
    best = score(current)
    k = options.children
    for _ in _progress(options.steps, "evolution", progress):
        kids = mutate(current, k, options.mutations, rng)
        values = np.full(len(kids), -np.inf)
        valid = constraints.satisfied(kids)
        if valid.any():
            values[valid] = score(kids[valid])
        values = values.reshape(len(current), k)
        pick = values.argmax(axis=1)
        improved = values[np.arange(len(current)), pick] > best
        rows = np.flatnonzero(improved)
        current[rows] = kids[rows * k + pick[rows]]
        best[rows] = values[rows, pick[rows]]
    return current, best


def gradient_ascent(start: np.ndarray, objective: Callable[[torch.Tensor], torch.Tensor], options: SearchOptions,
                    constraints: SequenceConstraints, device: torch.device | str = "cpu",
                    progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Straight-through gradient ascent on relaxed one-hot sequences, from `start` (N, L) codes.

    Parameters
    ----------
    start : starting designs.
    objective : (B, L, 4) one-hot float -> (B,) objective, differentiable.
    options : steps, lr, init_scale, batch_size.
    constraints : only sequences satisfying them are kept as the best seen.
    device : where the logits live.
    progress : show a progress bar.

    Returns
    -------
    The best sequence seen per design (N, L) and its objective (N,); a design that never
    satisfied the constraints keeps its start (objective -inf unless the start satisfies them).
    """
    start = np.asarray(start, dtype=np.uint8)
    n = len(start)
    best_codes = start.copy()
    best = np.full(n, -np.inf)
    batches = [slice(i, i + options.batch_size) for i in range(0, n, options.batch_size)]
    logits = [start_logits(torch.as_tensor(start[b]), options.init_scale).to(device) for b in batches]
    for step in _progress(options.steps + 1, "gradient ascent", progress):
        for b, w in zip(batches, logits):
            onehot, hard_codes = straight_through(w)
            value = objective(onehot)
            codes = hard_codes.to(torch.uint8).cpu().numpy()
            scores = value.detach().double().cpu().numpy()
            scores[~constraints.satisfied(codes)] = -np.inf
            better = scores > best[b]
            rows = np.flatnonzero(better) + b.start
            best[rows] = scores[better]
            best_codes[rows] = codes[better]
            if step < options.steps:
                ascend(w, value, options.lr)
    return best_codes, best


def start_logits(codes: torch.Tensor, scale: float) -> torch.Tensor:
    """Logits (B, L, 4) that put `scale` on each base of uint8 codes (B, L), with gradients on."""
    return torch.nn.functional.one_hot(codes.long(), 4).float().mul_(scale).requires_grad_(True)


def straight_through(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(one-hot input whose value is the argmax sequence and whose gradient is the softmax's,
    argmax codes (B, L))."""
    soft = torch.softmax(logits, dim=-1)
    codes = logits.detach().argmax(dim=-1)
    hard = torch.nn.functional.one_hot(codes, 4).to(soft.dtype)
    return hard + soft - soft.detach(), codes


def ascend(logits: torch.Tensor, value: torch.Tensor, lr: float) -> None:
    """One normalised gradient-ascent step on `logits` for `value` (B,): each sequence's gradient
    is scaled so its largest entry moves by `lr`. Positions move in proportion to how much they
    matter, so a step changes the bases the objective depends on most, not every base a little
    (which sign-like optimisers such as Adam do, scattering edits over the whole sequence)."""
    (grad,) = torch.autograd.grad(value.sum(), logits)
    scale = grad.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    with torch.no_grad():
        logits.add_(grad / scale, alpha=lr)


def objective_of(predict_soft: Callable[[torch.Tensor], torch.Tensor], target: int, kind: str,
                 spread_penalty: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Objective (B,) of one-hot inputs from member predictions (M, B, C): the members' mean
    specificity, minus `spread_penalty` times their standard deviation (with several members)."""
    from promoter_modelling.design.objective import specificity_torch

    def objective(onehot: torch.Tensor) -> torch.Tensor:
        values = specificity_torch(predict_soft(onehot), target, kind)
        out = values.mean(dim=0)
        if spread_penalty and values.shape[0] > 1:
            out = out - spread_penalty * values.std(dim=0)
        return out

    return objective
