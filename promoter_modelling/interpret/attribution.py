"""Per-base attributions of a seed ensemble: DeepLIFT/SHAP against dinucleotide-shuffled
references and in-silico saturation mutagenesis (ISM), both computed by tangermeme.

Arrays are (sequences, outputs, length, 4), bases in A, C, G, T order, averaged over the
ensemble's members:

- DeepLIFT/SHAP: hypothetical contributions (what each base would contribute at each position);
  times the one-hot sequence they sum to prediction minus mean reference prediction.
- ISM: prediction of the sequence with that one substitution minus prediction of the sequence
  (0 at the sequence's own base).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from promoter_modelling.errors import InputError

METHODS = ("deeplift", "ism")


@dataclass(frozen=True)
class AttributionOptions:
    """How attributions are computed.

    method: "deeplift" (DeepLIFT/SHAP) or "ism"; outputs: head outputs explained (default all);
    n_shuffles: dinucleotide-shuffled references per sequence (DeepLIFT); batch_size: sequence-
    reference pairs (DeepLIFT) or mutants (ISM) per forward pass (None: 16 and 256, the fastest
    measured on a CPU, docs/performance.md); seed: seed of the references;
    chunk_size: sequences held at once; progress: progress bars. The device is the ensemble's."""

    method: str = "deeplift"
    outputs: tuple[str, ...] | None = None
    n_shuffles: int = 20
    batch_size: int | None = None
    seed: int = 0
    chunk_size: int = 64
    progress: bool = True

    @property
    def batch(self) -> int:
        """Pairs (DeepLIFT) or mutants (ISM) per forward pass."""
        return self.batch_size or (16 if self.method == "deeplift" else 256)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"attribution method {self.method!r} is not one of {', '.join(METHODS)}")
        for name in ("n_shuffles", "batch_size", "chunk_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"--{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class Attributions:
    """Attributions of sequences for the outputs of one head (see the module docstring).

    values: (N, O, L, 4) float32; predictions: (N, O) ensemble mean; additivity: (N, O) largest
    |sum of contributions - (prediction - mean reference prediction)| over members (DeepLIFT;
    NaN for ISM)."""

    method: str
    head: str
    outputs: list[str]
    ids: list[str]
    codes: np.ndarray
    values: np.ndarray
    predictions: np.ndarray
    additivity: np.ndarray
    checkpoints: list[str] = field(default_factory=list)

    def hypothetical(self) -> np.ndarray:
        """(N, O, L, 4) hypothetical contributions: DeepLIFT's as computed; ISM's centred on the
        mean over the four bases at each position (tangermeme's ISM attribution)."""
        if self.method == "ism":
            return self.values - self.values.mean(axis=-1, keepdims=True)
        return self.values

    def one_hot(self) -> np.ndarray:
        """(N, L, 4) float32 one-hot of the sequences (attributions are only taken on A, C, G, T)."""
        return np.eye(4, dtype=np.float32)[self.codes]

    def contributions(self) -> np.ndarray:
        """(N, O, L) contribution of the base present at each position."""
        return (self.hypothetical() * self.one_hot()[:, None]).sum(axis=-1)


def _one_hot_channels_first(codes: np.ndarray) -> torch.Tensor:
    """(N, 4, L) float32 one-hot of uint8 codes of A, C, G, T."""
    return torch.from_numpy(np.eye(4, dtype=np.float32)[codes]).transpose(1, 2).contiguous()


def check_attributable(ensemble) -> None:
    """Refuse, in one line, models whose inputs are not one-hot sequences."""
    if ensemble.input_kind != "onehot":
        words = "6-mer tokens" if ensemble.input_kind == "tokens" else "motif counts"
        raise InputError(f"{ensemble.paths[0]}: attributions need a model reading one-hot sequences; this one reads "
                         f"{ensemble.input_kind} inputs ({words}), which have no per-base gradient")


def output_indices(ensemble, outputs: Sequence[str] | None) -> list[int]:
    """Indices of the explained outputs in the head (all by default); unknown names refused."""
    if not outputs:
        return list(range(len(ensemble.cells)))
    unknown = [o for o in outputs if o not in ensemble.cells]
    if unknown:
        raise InputError(f"head {ensemble.head!r} has no output {', '.join(unknown)} (its outputs: "
                         f"{', '.join(ensemble.cells)})")
    return [ensemble.cells.index(o) for o in outputs]


def _deeplift_member(view, x: torch.Tensor, references: torch.Tensor, targets: list[int],
                     options: AttributionOptions, device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values (n, O, L, 4), predictions (n, O), additivity error (n, O)) of one member."""
    from tangermeme.deep_lift_shap import deep_lift_shap

    from promoter_modelling.interpret.views import nonlinear_rules

    n, _, length = x.shape
    values = np.empty((n, len(targets), length, 4), dtype=np.float32)
    with torch.no_grad():
        y = view(x.to(device)).float().cpu()
        y_ref = torch.cat([view(part.to(device)).float().cpu()
                           for part in references.reshape(-1, 4, length).split(256)])
    reference_mean = y_ref.reshape(n, references.shape[1], -1).mean(dim=1)
    error = np.empty((n, len(targets)), dtype=np.float32)
    for j, target in enumerate(targets):
        with warnings.catch_warnings():  # the additivity is checked and reported below, per sequence
            warnings.filterwarnings("ignore", message="Convergence deltas")
            hyp = deep_lift_shap(view, x, target=target, references=references, hypothetical=True,
                                 additional_nonlinear_ops=nonlinear_rules(), batch_size=options.batch,
                                 device=device, warning_threshold=float("inf"))
        hyp = hyp.float().cpu()
        values[:, j] = hyp.transpose(1, 2).numpy()
        total = (hyp * x).sum(dim=(1, 2))
        error[:, j] = (total - (y[:, target] - reference_mean[:, target])).abs().numpy()
    return values, y[:, targets].numpy(), error


def _ism_member(view, x: torch.Tensor, targets: list[int], options: AttributionOptions,
                device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(values (n, O, L, 4), predictions (n, O)) of one member."""
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis

    y0, y_hat = saturation_mutagenesis(view, x, raw_outputs=True, batch_size=options.batch, device=device,
                                       fast=False)
    y0, y_hat = y0.float().cpu(), y_hat.float().cpu()  # (n, O_all), (n, 4, L, O_all)
    delta = y_hat[..., targets] - y0[:, None, None, targets]
    delta = delta * (1 - x[..., None])  # a base "substituted" by itself changes nothing
    return delta.permute(0, 3, 2, 1).contiguous().numpy(), y0[:, targets].numpy()


def attribute(ensemble, codes: np.ndarray, ids: Sequence[str], options: AttributionOptions) -> Attributions:
    """Attributions of uint8 codes (N, L) for the ensemble's head, averaged over its members.

    Parameters
    ----------
    ensemble : a `design.ensemble.Ensemble` of one-hot models (the seeds of a run).
    codes : sequences as uint8 codes (A0 C1 G2 T3 N4), all of the model's length.
    ids : one name per sequence.
    options : method, outputs, references, batching, device, progress.

    Returns
    -------
    Attributions with values (N, O, L, 4), ensemble-mean predictions and, for DeepLIFT, the
    largest additivity error over members per sequence and output.
    """
    from promoter_modelling.interpret.views import HeadView, prepare_for_deeplift

    check_attributable(ensemble)
    targets = output_indices(ensemble, options.outputs)
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n, length = codes.shape
    unknown = np.flatnonzero((codes > 3).any(axis=1))
    if unknown.size:  # the models read N as 0.25 of each base, which tangermeme's one-hot inputs cannot hold
        row = int(unknown[0])
        raise InputError(f"sequence {ids[row]!r} has N at position {int(np.argmax(codes[row] > 3)) + 1} "
                         f"({unknown.size} sequences have N); attributions are taken on one-hot sequences, so every "
                         "base must be known: drop or fill those sequences")
    torch.manual_seed(options.seed)
    values = np.zeros((n, len(targets), length, 4), dtype=np.float32)
    predictions = np.zeros((n, len(targets)), dtype=np.float32)
    additivity = np.full((n, len(targets)), np.nan if options.method == "ism" else 0.0, dtype=np.float32)
    members = len(ensemble.models)
    views = []
    for model in ensemble.models:
        if options.method == "deeplift":
            prepare_for_deeplift(model)
        for param in model.parameters():
            param.requires_grad_(False)
        views.append(HeadView(model, ensemble.head).eval())
    chunks = range(0, n, options.chunk_size)
    bar = None
    if options.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n * members, desc=f"{options.method} attributions", unit="seq", file=sys.stderr)
    for start in chunks:
        rows = slice(start, min(start + options.chunk_size, n))
        x = _one_hot_channels_first(codes[rows])
        references = None
        if options.method == "deeplift":
            from tangermeme.ersatz import dinucleotide_shuffle

            # the same references for every member; seeded by the chunk so results do not depend on chunking
            references = torch.stack([dinucleotide_shuffle(x[i:i + 1], n=options.n_shuffles,
                                                           random_state=options.seed + start + i)[0]
                                      for i in range(len(x))])
        for view in views:
            if options.method == "deeplift":
                v, p, e = _deeplift_member(view, x, references, targets, options, ensemble.device)
                additivity[rows] = np.maximum(additivity[rows], e)
            else:
                v, p = _ism_member(view, x, targets, options, ensemble.device)
            values[rows] += v / members
            predictions[rows] += p / members
            if bar is not None:
                bar.update(len(x))
    if bar is not None:
        bar.close()
    return Attributions(options.method, ensemble.head, [ensemble.cells[t] for t in targets], list(ids), codes,
                        values, predictions, additivity, list(ensemble.paths))
