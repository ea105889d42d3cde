"""In-silico motif insertion: how much does each motif change a model's predicted expression?

For every motif of a MEME file, `n` instances sampled from its matrix overwrite random windows
of every background promoter (starts uniform in [0, L - width), forward strand, overlaps
allowed, length kept: the published procedure). Every seed's model predicts the promoters with
and without the insertions; the per-promoter effect is the seed-averaged difference per cell.

Significance: a model reacts to almost any insertion, so a test of the mean effect against zero
over thousands of promoters calls nearly every motif significant (kept as `p_value`/`q_value`).
Each motif therefore gets a null of its own: `num_null_shuffles` position-shuffled versions of
it (its sampled instances with their positions permuted, written at the same places), predicted
like the motif. The motif's mean effect is tested against its shuffles' mean effects (`null_test`,
a t-test with shuffles - 1 degrees of freedom), Benjamini-Hochberg across motifs within each
cell (`q_value_vs_null`, which decides `significant`). Motifs are ranked per cell by their raw
mean effect (rank_up: strongest increase first; rank_down: strongest decrease first).

Outputs under `<root_dir>/motif_insertion_analysis/`, prefixed by the run name:
`_motif_effects.tsv` (one row per motif and cell), `_per_sequence_effects.parquet` (one row per
promoter and motif), `_sequences.tsv` (promoters, measurements, baseline predictions),
`_motif_insertion.json` (parameters and checkpoints), `_effects_heatmap.png`,
`_top_motifs.png` and `_<cell>_top_motif_logos.png`.

Token (DNABERT) and motif-count (MotifBasedFCN) models read the inserted sequences through the
input recipe saved in their checkpoints, exactly as training read sequences. Promoters of one
split (`--sequences_split`) come from the split the models were trained on (their recipe's split
seed). Entry point: `perform_analysis(run, InsertionOptions(...))`; the command line is parsed in
`promoter_modelling.cli.analysis_args`.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats

from promoter_modelling import sequence as seqlib
from promoter_modelling.analysis.motifs import Motif, default_meme_file, read_motifs, sample_instances
from promoter_modelling.errors import InputError

if TYPE_CHECKING:
    from promoter_modelling.recipe import InputRecipe
    from promoter_modelling.run_config import RunConfig

ANALYSIS_DIR = "motif_insertion_analysis"
SPLITS = ("all", "train", "val", "test")
BACKGROUNDS = ("sequences", "dinucleotide_shuffled")
# How the null is built and tested (part of the stored parameters: a new null recomputes results).
NULL_MODEL = "position_shuffled_motif_instances;t_vs_shuffles"


# --- insertion -----------------------------------------------------------------------------------

def insert_motif(codes: np.ndarray, pwm: np.ndarray, n_insertions: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overwrite `n_insertions` sampled instances of a (width, 4) motif into every row of uint8
    codes (N, L). Returns (new codes, starts (N, n), instances (N, n, width)).

    Starts are uniform in [0, L - width) (exclusive bound, as published); copies are written in
    order, so a later copy overwrites an earlier one where they overlap. Vectorised over rows.
    """
    codes, starts, instances = _draw_insertions(codes, pwm, n_insertions, rng)
    return write_instances(codes, starts, instances), starts, instances


def _draw_insertions(codes: np.ndarray, pwm: np.ndarray, n_insertions: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked codes, starts (N, n) and sampled instances (N, n, width) of one motif's insertions."""
    codes = np.asarray(codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise InputError(f"background codes must be (sequences, length), got shape {codes.shape}")
    n, length = codes.shape
    width = int(np.asarray(pwm).shape[0])
    if width >= length:
        raise InputError(f"a motif of width {width} does not fit into {length}-bp sequences")
    starts = rng.integers(0, length - width, size=(n, n_insertions))
    instances = sample_instances(pwm, n * n_insertions, rng).reshape(n, n_insertions, width)
    return codes, starts, instances


def write_instances(codes: np.ndarray, starts: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """A copy of uint8 codes (N, L) with instances (..., N, n, width) written at starts (N, n),
    copy after copy (a later copy overwrites an earlier one where they overlap); leading
    dimensions of `instances` give as many modified copies of the codes (..., N, L)."""
    instances = np.asarray(instances, dtype=np.uint8)
    out = np.broadcast_to(np.asarray(codes, dtype=np.uint8), instances.shape[:-2] + codes.shape[-1:]).copy()
    rows = np.arange(codes.shape[0])[:, None]
    columns = starts[:, :, None] + np.arange(instances.shape[-1])  # (N, n, width)
    for j in range(starts.shape[1]):  # n is small (10); every step is vectorised over all sequences
        out[..., rows, columns[:, j]] = instances[..., j, :]
    return out


def null_permutations(pwm: np.ndarray, k: int, rng: np.random.Generator, tries: int = 20) -> np.ndarray:
    """`k` permutations of a (width, 4) matrix's positions (k, width), the shuffled motifs of the
    null. A permutation that leaves the matrix unchanged is redrawn (up to `tries` times; a matrix
    whose positions are all alike stays itself, and its effect then equals its null's)."""
    pwm = np.asarray(pwm)
    width = pwm.shape[0]
    out = np.empty((k, width), dtype=np.int64)
    for i in range(k):
        for _ in range(tries):
            perm = rng.permutation(width)
            if not np.array_equal(pwm[perm], pwm):
                break
        out[i] = perm
    return out


def null_rng(seed: int, name: str) -> np.random.Generator:
    """Random stream of a motif's shuffles (seed and motif name only; shuffle k is the same
    whatever the number of shuffles drawn after it)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8")), 1])


def insert_with_null(codes: np.ndarray, pwm: np.ndarray, name: str, n_insertions: int, seed: int,
                     num_null_shuffles: int) -> np.ndarray:
    """The promoters with a motif inserted, followed by the same promoters with each of its
    position-shuffled versions inserted: uint8 codes ((1 + num_null_shuffles) * N, L).

    A shuffle's instances are the motif's own sampled instances with their positions permuted
    (one permutation per shuffle, `null_permutations`), written at the same starts: a sample of
    the shuffled matrix with the same copies, places and base composition as the real motif.
    The motif's own insertions are those of `insert_motif` with `motif_rng(seed, name)`.
    """
    codes, starts, instances = _draw_insertions(codes, pwm, n_insertions, motif_rng(seed, name))
    if num_null_shuffles:
        perms = null_permutations(pwm, num_null_shuffles, null_rng(seed, name))  # (R, width)
        shuffled = np.moveaxis(instances[:, :, perms], 2, 0)  # (R, N, n, width)
        instances = np.concatenate([instances[None], shuffled])
    return write_instances(codes, starts, instances).reshape(-1, codes.shape[1])


def motif_rng(seed: int, name: str) -> np.random.Generator:
    """Random stream of one motif: depends on the seed and the motif name only, so a motif's
    insertions do not change with the other motifs in the file."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


# --- prediction ------------------------------------------------------------------------------------

def predict_seeds(models: list, codes: np.ndarray, head: str, batch_size: int, device,
                  transform: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Predictions of one head by every model: (seeds, N, outputs), eval mode, batched."""
    from promoter_modelling.inference import predict_inputs

    inputs = transform(codes) if transform is not None else codes
    return np.stack([predict_inputs(model, inputs, batch_size, device, heads=[head])[head] for model in models])


@dataclass
class InsertionResult:
    """Raw results: baseline (seeds, N, K) predictions, seed-averaged per-promoter effects
    (motifs, N, K), each seed's mean effect (motifs, seeds, K) and, when a null was computed,
    the seed- and shuffle-averaged per-promoter effects of the shuffled motifs (motifs, N, K) and
    each seed's and shuffle's mean effect (motifs, seeds, shuffles, K)."""

    motifs: list[Motif]
    cells: list[str]
    baseline: np.ndarray
    effects: np.ndarray
    seed_mean_effects: np.ndarray
    null_effects: np.ndarray | None = None
    null_seed_mean_effects: np.ndarray | None = None

    @property
    def num_null_shuffles(self) -> int:
        return 0 if self.null_seed_mean_effects is None else int(self.null_seed_mean_effects.shape[2])


def run_insertion(models: list, codes: np.ndarray, motifs: list[Motif], head: str, n_insertions: int = 10,
                  seed: int = 97, batch_size: int = 2048, device=None,
                  transform: Callable[[np.ndarray], np.ndarray] | None = None,
                  progress: bool = False, num_null_shuffles: int = 5) -> InsertionResult:
    """Insert every motif, and `num_null_shuffles` position-shuffled versions of it, into every
    background promoter and predict with every model.

    The baseline is predicted once per promoter and model; each motif costs 1 + num_null_shuffles
    passes of every model over the promoters (motifs are pooled into one pass when the promoters
    fill less than a batch).

    Parameters
    ----------
    models : the models (one per seed), all reading the same inputs.
    codes : uint8 codes (N, L) of the background promoters.
    motifs : the motifs inserted (`analysis.motifs.read_motifs`).
    head : the head whose outputs are compared.
    n_insertions : copies of a motif written into each promoter.
    seed : seed of the insertions (each motif has its own streams, `motif_rng` and `null_rng`).
    batch_size : sequences per model pass.
    device : torch device (None: GPU when present).
    transform : codes -> model inputs (`input_transform`; None for one-hot models).
    progress : show a progress bar over motifs.
    num_null_shuffles : shuffled versions of each motif inserted as its null (`insert_with_null`;
        0: no null).

    Returns
    -------
    InsertionResult with the baseline predictions (seeds, N, K), the seed-averaged per-promoter
    effects (motifs, N, K), each seed's mean effect (motifs, seeds, K) and the null's effects.
    """
    if not models:
        raise InputError("motif insertion needs at least one trained model")
    if not motifs:
        raise InputError("motif insertion needs at least one motif")
    if num_null_shuffles < 0 or num_null_shuffles == 1:
        raise InputError(f"the number of null shuffles must be 0 (no null) or at least 2, got {num_null_shuffles}")
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    baseline = predict_seeds(models, codes, head, batch_size, device, transform)  # (S, N, K)
    seeds, n, k = baseline.shape
    variants = 1 + num_null_shuffles  # the motif and its shuffles
    effects = np.empty((len(motifs), n, k), dtype=np.float32)
    seed_means = np.empty((len(motifs), seeds, k), dtype=np.float64)
    null_effects = np.empty((len(motifs), n, k), dtype=np.float32) if num_null_shuffles else None
    null_means = np.empty((len(motifs), seeds, num_null_shuffles, k), dtype=np.float64) if num_null_shuffles else None
    iterator = motifs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(motifs, desc="motifs", unit="motif")
    # Few promoters: several motifs share one model pass, so batches stay full (GPU efficiency).
    per_pass = max(1, batch_size // max(n * variants, 1))
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        stacked = np.concatenate([codes_ for _, codes_ in pending])
        predictions = predict_seeds(models, stacked, head, batch_size, device, transform)
        size = n * variants
        for j, (index, _) in enumerate(pending):
            diff = predictions[:, j * size:(j + 1) * size].reshape(seeds, variants, n, k) - baseline[:, None]
            effects[index] = diff[:, 0].mean(axis=0)
            seed_means[index] = diff[:, 0].mean(axis=1)
            if num_null_shuffles:
                null_effects[index] = diff[:, 1:].mean(axis=(0, 1))
                null_means[index] = diff[:, 1:].mean(axis=2)
        pending.clear()

    for i, motif in enumerate(iterator):
        pending.append((i, insert_with_null(codes, motif.pwm, motif.name, n_insertions, seed, num_null_shuffles)))
        if len(pending) == per_pass:
            flush()
    if pending:
        flush()
    return InsertionResult(list(motifs), _output_names(models[0], head, k), baseline, effects, seed_means,
                           null_effects, null_means)


def _output_names(model, head: str, k: int) -> list[str]:
    for spec in getattr(model, "head_specs", []):
        if spec.name == head:
            return list(spec.output_names)
    return [f"output_{i}" for i in range(k)]


# --- statistics ----------------------------------------------------------------------------------

def null_test(mean: np.ndarray, shuffle_means: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Is a motif's mean effect a draw from the effects of its shuffles?

    `mean` (M, K): the motif's mean effect per cell; `shuffle_means` (M, R, K): each of its R
    shuffles' mean effect (over the same promoters, positions and copies). Under the null the
    motif is one more shuffle of itself, exchangeable with them, so
    t = (mean - mean of shuffles) / (sd of shuffles * sqrt(1 + 1/R)) has a t distribution with
    R - 1 degrees of freedom (the two-sided test of a new observation against a normal sample).
    The spread that matters is the one between motifs of the same composition, not between
    promoters: with thousands of promoters any two motifs differ "significantly" per promoter.

    Returns (null effect (M, K), sd of the shuffles (M, K), t (M, K), two-sided p (M, K)); p is
    NaN with fewer than 2 shuffles, 1 where the motif and all its shuffles have the same effect.
    """
    mean = np.asarray(mean, dtype=np.float64)
    shuffle_means = np.asarray(shuffle_means, dtype=np.float64)
    r = shuffle_means.shape[1]
    null = shuffle_means.mean(axis=1)
    if r < 2:
        nan = np.full(mean.shape, np.nan)
        return null, nan, nan.copy(), nan.copy()
    sd = shuffle_means.std(axis=1, ddof=1)
    # effects are float32 per promoter: differences below their resolution are no evidence
    floor = 1e-6 * (np.abs(mean) + np.abs(null))
    scale = np.maximum(sd, floor) * np.sqrt(1.0 + 1.0 / r)
    diff = mean - null
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), np.where(diff == 0, 0.0, np.sign(diff) * np.inf))
    p = 2.0 * scipy.stats.t.sf(np.abs(t), df=r - 1)
    return null, sd, t, p


def summarise(result: InsertionResult, alpha: float = 0.05) -> pd.DataFrame:
    """One row per motif and cell.

    Raw effect: mean/median/std/sem of the per-promoter effect, its one-sample t-test against 0
    and BH q-value (per cell) - kept for reference; with many promoters it calls nearly every
    motif significant, as the model reacts to any insertion. Null-corrected effect (when the
    result has shuffles): `null_effect` (mean effect of the motif's position-shuffled versions),
    `effect_vs_null` (mean_effect - null_effect), its t-test against the shuffles (`null_test`)
    and BH q-value per cell (`q_value_vs_null`). `significant` is q_value_vs_null < alpha (the
    raw q-value only for results without a null); `regulation` is "up" / "down" for significant
    motifs whose raw and null-corrected effects are both positive / negative, else "none".
    Ranks (`rank_up`, `rank_down`) order the raw mean effect, as published. Across seeds:
    `std_effect_across_seeds` (of the per-seed mean effects; NaN with one seed) and
    `seeds_same_sign` (seeds whose null-corrected effect, or raw effect without a null, has the
    sign of the seed-averaged one).
    """
    effects = result.effects.astype(np.float64)
    m, n, k = effects.shape
    seeds = result.seed_mean_effects.shape[1]
    mean = effects.mean(axis=1)
    std = effects.std(axis=1, ddof=1) if n > 1 else np.full((m, k), np.nan)
    sem = std / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        test = scipy.stats.ttest_1samp(effects, 0.0, axis=1) if n > 1 else None
    t_stat = np.asarray(test.statistic, dtype=float) if test is not None else np.full((m, k), np.nan)
    p_value = np.asarray(test.pvalue, dtype=float) if test is not None else np.full((m, k), np.nan)
    p_value = np.where(np.isfinite(p_value), p_value, 1.0)  # no variation at all: no evidence of an effect
    q_value = scipy.stats.false_discovery_control(p_value, axis=0) if m > 0 else p_value
    rank_up = scipy.stats.rankdata(-mean, axis=0, method="min").astype(int)
    rank_down = scipy.stats.rankdata(mean, axis=0, method="min").astype(int)
    seed_means = np.asarray(result.seed_mean_effects, dtype=np.float64)  # (M, S, K)
    shuffles = result.num_null_shuffles
    if shuffles:
        null_seed = np.asarray(result.null_seed_mean_effects, dtype=np.float64)  # (M, S, R, K)
        null_effect, null_sd, t_null, p_null = null_test(mean, null_seed.mean(axis=1))
        p_null = np.where(np.isfinite(p_null), p_null, 1.0)
        q_null = scipy.stats.false_discovery_control(p_null, axis=0) if m > 0 else p_null
        vs_null = mean - null_effect
        seed_vs_null = seed_means - null_seed.mean(axis=2)
        consistent = np.sign(seed_vs_null) == np.sign(vs_null)[:, None]
    else:
        null_effect = null_sd = t_null = p_null = q_null = vs_null = np.full((m, k), np.nan)
        consistent = np.sign(seed_means) == np.sign(mean)[:, None]
    significant = (q_null < alpha) if shuffles else (q_value < alpha)
    signed = mean if not shuffles else np.where(np.sign(mean) == np.sign(vs_null), vs_null, 0.0)
    regulation = np.where(significant & (signed > 0), "up", np.where(significant & (signed < 0), "down", "none"))
    spread = seed_means.std(axis=1, ddof=1) if seeds > 1 else np.full((m, k), np.nan)
    frame = pd.DataFrame({
        "motif": np.repeat([mo.name for mo in result.motifs], k),
        "alt_name": np.repeat([mo.alt_name for mo in result.motifs], k),
        "label": np.repeat([mo.label for mo in result.motifs], k),
        "width": np.repeat([mo.width for mo in result.motifs], k),
        "cell": np.tile(result.cells, m),
        "n_sequences": n,
        "num_seeds": seeds,
        "mean_effect": mean.ravel(),
        "median_effect": np.median(effects, axis=1).ravel(),
        "std_effect": std.ravel(),
        "sem_effect": sem.ravel(),
        "t_statistic": t_stat.ravel(),
        "p_value": p_value.ravel(),
        "q_value": q_value.ravel(),
        "num_null_shuffles": shuffles,
        "null_effect": null_effect.ravel(),
        "null_effect_std": null_sd.ravel(),
        "effect_vs_null": vs_null.ravel(),
        "t_statistic_vs_null": t_null.ravel(),
        "p_value_vs_null": p_null.ravel(),
        "q_value_vs_null": q_null.ravel(),
        "significant": significant.ravel(),
        "regulation": regulation.ravel(),
    })
    frame["direction"] = np.where(frame["mean_effect"] >= 0, "up", "down")
    frame["rank_up"] = rank_up.ravel()
    frame["rank_down"] = rank_down.ravel()
    frame["std_effect_across_seeds"] = spread.ravel()
    frame["seeds_same_sign"] = consistent.sum(axis=1).ravel()
    for s in range(seeds):
        frame[f"mean_effect_seed_{s}"] = seed_means[:, s, :].ravel()
    return frame.sort_values(["cell", "rank_up"], kind="stable").reset_index(drop=True)


def top_motifs(summary: pd.DataFrame, cell: str, n: int = 10, direction: str = "up") -> pd.DataFrame:
    """The `n` motifs with the largest increase (`up`) or decrease (`down`) in one cell."""
    rows = summary[summary["cell"] == cell]
    if rows.empty:
        raise InputError(f"no results for cell {cell!r}; cells: {', '.join(summary['cell'].unique())}")
    return rows.sort_values("rank_up" if direction == "up" else "rank_down").head(n)


def effects_table(summary: pd.DataFrame, value: str = "mean_effect") -> pd.DataFrame:
    """Wide table motif x cell of one summary column (cells in their original order)."""
    cells = list(dict.fromkeys(summary["cell"]))
    wide = summary.pivot(index="motif", columns="cell", values=value)
    return wide[cells]


# --- inputs: models, background promoters, model-specific input transforms ------------------------

def select_head(model, requested: str | None = None) -> str:
    """The head analysed: `requested`, else `Fluorescence`, else the first fluorescence head."""
    heads = list(model.heads)
    if requested:
        if requested not in heads:
            raise InputError(f"the model has no head {requested!r}; its heads: {', '.join(heads)}")
        return requested
    if "Fluorescence" in heads:
        return "Fluorescence"
    for name in heads:
        if name.startswith("Fluorescence"):
            return name
    raise InputError(f"the model has no fluorescence head (heads: {', '.join(heads)}); choose one with --head")


def input_transform(model, recipe: InputRecipe | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The function that turns uint8 codes (N, L) into the model's inputs.

    Parameters
    ----------
    model : a loaded model (`checkpoints.load_model`); its checkpoint's input recipe
        (`model.input_recipe`) says how training read sequences.
    recipe : the recipe to use instead (the model's with flag overrides, `with_overrides`);
        default `model.input_recipe`.

    Returns
    -------
    None for one-hot models (codes are their inputs); otherwise `recipe.codes_to_inputs`: k-mer
    tokens for DNABERT, motif hit counts (rescanned after insertion) for MotifBasedFCN, exactly
    as training built them, with no training flag needed.
    """
    recipe = recipe if recipe is not None else model.input_recipe
    if recipe.kind != model.input_kind:
        raise InputError(f"a {recipe.kind} input recipe cannot feed a model reading {model.input_kind} inputs")
    if recipe.kind == "onehot":
        return None
    if recipe.kind == "tokens":
        recipe.kmer_vocab  # noqa: B018 - resolve now: a recipe without vocabulary fails before any work
    else:
        recipe.motifs  # noqa: B018 - parse now, once
    return recipe.codes_to_inputs


def analysis_recipe(models: Sequence, run: RunConfig) -> InputRecipe:
    """The input recipe the analysed models share: their checkpoints' recipe, with the motif file
    or tokenizer replaced only where `--motif_meme_file` / `--dnabert_path` were given.

    Seeds of one run read sequences alike; models whose recipes would turn sequences into
    different inputs are refused (one line)."""
    recipes = [model.input_recipe for model in models]
    first = recipes[0]
    for other in recipes[1:]:
        if other.identity() != first.identity():
            raise InputError("the analysed models read sequences differently (different input kinds, tokenizers "
                             "or motif files in their checkpoints); analyse them separately")
    return first.with_overrides(meme_file=run.data.motif_meme_file, dnabert_path=run.data.dnabert_path)


def background_sequences(table: pd.DataFrame, codes: np.ndarray, split: str = "all", max_sequences: int | None = None,
                         background: str = "sequences", seed: int = 97) -> tuple[pd.DataFrame, np.ndarray]:
    """Promoters to insert into: a split (or all, as published), optionally a random subset of
    `max_sequences`, optionally dinucleotide-shuffled (tangermeme) to remove their own motifs."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if background not in BACKGROUNDS:
        raise InputError(f"unknown background {background!r}; expected one of {', '.join(BACKGROUNDS)}")
    keep = np.ones(len(table), dtype=bool) if split == "all" else table[f"is_{split}"].to_numpy(dtype=bool)
    index = np.flatnonzero(keep)
    if max_sequences is not None and max_sequences < len(index):
        if max_sequences < 1:
            raise InputError(f"--max_sequences must be at least 1, got {max_sequences}")
        index = np.sort(np.random.default_rng(seed).choice(index, size=max_sequences, replace=False))
    if len(index) == 0:
        raise InputError(f"no promoters in split {split!r}")
    chosen = table.iloc[index].reset_index(drop=True)
    chosen.insert(0, "source_row", index)
    selected = np.asarray(codes)[index]
    if background == "dinucleotide_shuffled":
        selected = dinucleotide_shuffle(selected, seed)
        chosen["sequence"] = seqlib.decode(selected)
    return chosen, selected


def dinucleotide_shuffle(codes: np.ndarray, seed: int) -> np.ndarray:
    """One dinucleotide-preserving shuffle per row of uint8 codes (tangermeme's Eulerian-path shuffle)."""
    import torch
    from tangermeme.ersatz import dinucleotide_shuffle as shuffle

    if (np.asarray(codes) > 3).any():
        raise InputError("dinucleotide shuffling needs sequences without N")
    onehot = torch.from_numpy(seqlib.ONE_HOT_TABLE[np.asarray(codes)]).permute(0, 2, 1).contiguous()
    shuffled = shuffle(onehot, n=1, random_state=seed)[:, 0]
    return shuffled.argmax(dim=1).numpy().astype(np.uint8)


# --- the analysis as a command runs it -------------------------------------------------------------

PER_SEQUENCE_FORMATS = ("parquet", "tsv", "none")


@dataclass(frozen=True)
class InsertionOptions:
    """Options of the motif insertion analysis beyond the training flags (which name the models).

    Parameters
    ----------
    meme_file : MEME file of the inserted motifs (None: the bundled JASPAR CORE vertebrates file).
    num_motif_insertions_per_sequence : copies of a motif written into each promoter (>= 1).
    insertion_seed : seed of the insertion positions, the sampled instances and promoter subsets.
    sequences_split : promoters inserted into: all (published), train, val or test (of the split
        the models were trained on).
    max_sequences : analyse a random subset of this many promoters (None: all of them).
    background : "sequences" (the promoters themselves, published) or "dinucleotide_shuffled".
    head : head analysed (None: the fluorescence head).
    alpha : q-value threshold for significance (of the null-corrected effect).
    num_null_shuffles : position-shuffled versions of each motif inserted as its null (0: no null,
        significance from the raw one-sample test; otherwise at least 2). Each costs one more
        model pass per motif.
    top_n : motifs printed and drawn per cell and direction (>= 1).
    per_sequence_output : format of the per-promoter effects table: parquet, tsv or none.
    no_plots : skip the figures.
    overwrite : recompute even when results for the same inputs exist.
    batch_size : sequences per model pass.
    device : auto (GPU when present), cpu or cuda.
    """

    meme_file: str | None = None
    num_motif_insertions_per_sequence: int = 10
    insertion_seed: int = 97
    sequences_split: str = "all"
    max_sequences: int | None = None
    background: str = "sequences"
    head: str | None = None
    alpha: float = 0.05
    num_null_shuffles: int = 5
    top_n: int = 10
    per_sequence_output: str = "parquet"
    no_plots: bool = False
    overwrite: bool = False
    batch_size: int = 2048
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.num_motif_insertions_per_sequence < 1:
            raise InputError("--num_motif_insertions_per_sequence must be at least 1, got "
                             f"{self.num_motif_insertions_per_sequence}")
        if self.sequences_split not in SPLITS:
            raise InputError(f"--sequences_split {self.sequences_split!r}: expected one of {', '.join(SPLITS)}")
        if self.max_sequences is not None and self.max_sequences < 1:
            raise InputError(f"--max_sequences must be at least 1, got {self.max_sequences}")
        if self.background not in BACKGROUNDS:
            raise InputError(f"--background {self.background!r}: expected one of {', '.join(BACKGROUNDS)}")
        if not 0 < self.alpha <= 1:
            raise InputError(f"--alpha must be in (0, 1], got {self.alpha}")
        if self.num_null_shuffles < 0 or self.num_null_shuffles == 1:
            raise InputError(f"--num_null_shuffles must be 0 (no null) or at least 2, got {self.num_null_shuffles}")
        if self.top_n < 1:
            raise InputError(f"--top_n must be at least 1, got {self.top_n}")
        if self.per_sequence_output not in PER_SEQUENCE_FORMATS:
            raise InputError(f"--per_sequence_output {self.per_sequence_output!r}: expected one of "
                             f"{', '.join(PER_SEQUENCE_FORMATS)}")
        if self.batch_size < 1:
            raise InputError(f"--batch_size must be at least 1, got {self.batch_size}")


def parameters(options: InsertionOptions, meme_file: str, checkpoints: list[str], head: str,
               run: RunConfig | None = None) -> dict:
    """What determines the results (compared to decide whether saved results can be reused).

    Parameters
    ----------
    options : the analysis options.
    meme_file : the MEME file actually read (default resolved).
    checkpoints : the analysed checkpoints, in seed order.
    head : the head analysed (default resolved).
    run : the run configuration; its `--motif_meme_file` / `--dnabert_path` overrides of the
        checkpoints' input recipe change the inputs and are recorded.

    Returns
    -------
    A JSON-serialisable dict (stored in `<name>_motif_insertion.json`).
    """
    params = {"meme_file": os.path.abspath(meme_file), "meme_mtime_ns": os.stat(meme_file).st_mtime_ns,
              "num_motif_insertions_per_sequence": options.num_motif_insertions_per_sequence,
              "insertion_seed": options.insertion_seed, "sequences_split": options.sequences_split,
              "max_sequences": options.max_sequences, "background": options.background, "head": head,
              "num_null_shuffles": options.num_null_shuffles, "null": NULL_MODEL,
              "checkpoints": [os.path.abspath(c) for c in checkpoints]}
    overrides = {} if run is None else {k: v for k, v in (("motif_meme_file", run.data.motif_meme_file),
                                                          ("dnabert_path", run.data.dnabert_path)) if v}
    if overrides:  # absent otherwise, so results of earlier versions stay reusable
        params["input_overrides"] = overrides
    return params


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_per_sequence(result: InsertionResult, path_stem: str, fmt: str = "parquet") -> str | None:
    """One row per promoter and motif: sequence_index, motif, <cell>_effect (long format)."""
    if fmt == "none":
        return None
    m, n, _ = result.effects.shape
    frame = pd.DataFrame({
        "sequence_index": np.tile(np.arange(n, dtype=np.int32), m),
        "motif": pd.Categorical.from_codes(np.repeat(np.arange(m), n), [mo.name for mo in result.motifs]),
    })
    for c, cell in enumerate(result.cells):
        frame[f"{cell}_effect"] = result.effects[:, :, c].ravel()
    from promoter_modelling.download import atomic_path

    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            print("notice: pyarrow is not installed; writing the per-sequence effects as gzipped TSV")
            fmt = "tsv"
    if fmt == "parquet":
        path = f"{path_stem}.parquet"
        with atomic_path(path, suffix=".parquet") as tmp:
            frame.to_parquet(tmp, index=False)
        return path
    path = f"{path_stem}.tsv.gz"
    with atomic_path(path, suffix=".tsv.gz") as tmp:
        frame.to_csv(tmp, sep="\t", index=False, compression="gzip")
    return path


def write_plots(summary: pd.DataFrame, motifs: list[Motif], prefix: str, title: str, top: int = 10,
                heatmap_rows: int = 40) -> dict[str, str]:
    """Heatmap of the strongest motifs, top up/down bars per cell and logos of each cell's top motifs."""
    from promoter_modelling.analysis import plots

    cells = list(dict.fromkeys(summary["cell"]))
    wide = effects_table(summary)
    strongest = wide.abs().max(axis=1).sort_values(ascending=False).index[:heatmap_rows]
    significant = effects_table(summary, "significant").loc[strongest].astype(bool)
    labels = summary.drop_duplicates("motif").set_index("motif")["label"]
    shown = wide.loc[strongest].rename(index=labels)
    heading = f"{title}\nmean predicted change on insertion ('*': significant vs shuffled motifs)"
    out = {"heatmap": plots.effect_heatmap(shown, significant.rename(index=labels), f"{prefix}_effects_heatmap.png",
                                           heading),
           "bars": plots.top_motif_bars(summary, cells, f"{prefix}_top_motifs.png", top=top)}
    by_name = {m.name: m for m in motifs}
    for cell in cells:
        chosen = top_motifs(summary, cell, min(top, 10), "up")
        chosen = chosen[chosen["mean_effect"] > 0]
        titles = [f"{row.label}  ({row.mean_effect:+.3g}, q={_decisive_q(row):.2g})" for row in chosen.itertuples()]
        path = plots.logo_grid([by_name[name].pwm for name in chosen["motif"]], titles,
                               f"{prefix}_{cell}_top_motif_logos.png", f"{cell}: motifs that raise expression most")
        if path:
            out[f"logos_{cell}"] = path
    return out


def _decisive_q(row) -> float:
    """The q-value `significant` was decided on: vs the null when there is one, else the raw one."""
    q = getattr(row, "q_value_vs_null", np.nan)
    return float(q) if pd.notna(q) else float(row.q_value)


def print_top(summary: pd.DataFrame, n: int = 10) -> None:
    """Print each cell's strongest activating and repressing motifs (rank, effect, effect vs the
    shuffled-motif null, the q-value significance is decided on)."""
    with_null = "effect_vs_null" in summary and summary["effect_vs_null"].notna().any()
    for cell in dict.fromkeys(summary["cell"]):
        for direction, word in (("up", "raise"), ("down", "lower")):
            rows = top_motifs(summary, cell, n, direction)
            rows = rows[rows["mean_effect"] > 0] if direction == "up" else rows[rows["mean_effect"] < 0]
            print(f"{cell}: {len(rows)} motif(s) that {word} expression most ('*' significant"
                  f"{' vs shuffled motifs' if with_null else ''})")
            for row in rows.itertuples():
                flag = "*" if row.significant else " "
                rank = row.rank_up if direction == "up" else row.rank_down
                vs = f"vs null {row.effect_vs_null:+.4f}  " if with_null else ""
                print(f"  {rank:4d}. {row.label:32.32s} effect {row.mean_effect:+.4f} +- {row.sem_effect:.4f}  "
                      f"{vs}q={_decisive_q(row):.2e} {flag}")


def perform_analysis(run: RunConfig, options: InsertionOptions) -> dict:
    """Run the motif insertion analysis of the models a run configuration names.

    Parameters
    ----------
    run : the training configuration that produced the models (strategy, tasks, model name and
        size, seeds, `data_split_seeds`); its final phase's runs are analysed, every seed.
        `run.data.motif_meme_file` / `dnabert_path`, when given, override the motif file /
        tokenizer of the checkpoints' input recipe.
    options : the analysis options.

    Returns
    -------
    dict with `summary` (the per motif and cell table), `reused` (True when saved results for
    the same models and parameters were read back) and the output paths (`summary_path`,
    `sequences_path`, `per_sequence_path`, plots).
    """
    from promoter_modelling.analysis.common import (
        fluorescence_data,
        models_split_seed,
        output_dir,
        phase_models,
        resolve_device,
    )
    from promoter_modelling.checkpoints import load_model
    from promoter_modelling.config import load_paths
    from promoter_modelling.io_utils import fingerprint, save_json, save_table
    from promoter_modelling.planning import final_phase

    start = time.time()
    paths = load_paths(run.config_path)
    phase = final_phase(run)
    name = phase.name_format
    found = phase_models(paths, phase)
    meme_file = options.meme_file or default_meme_file()
    motifs = read_motifs(meme_file)
    print(f"{len(motifs)} motifs from {meme_file}; models: {', '.join(m.run for m in found)}")
    device = resolve_device(options.device)
    models = [load_model(m.checkpoint, map_location=device) for m in found]
    head = select_head(models[0], options.head)
    out_dir = output_dir(paths, ANALYSIS_DIR)
    prefix = os.path.join(out_dir, name)
    meta_path = f"{prefix}_motif_insertion.json"
    summary_path = f"{prefix}_motif_effects.tsv"
    checkpoints = [m.checkpoint for m in found]
    params = parameters(options, meme_file, checkpoints, head, run)
    # the files' size and mtime too: a checkpoint retrained at the same path invalidates the results
    files = [meme_file, *checkpoints] + ([run.data.motif_meme_file] if run.data.motif_meme_file else [])
    inputs_fingerprint = fingerprint(files, params)
    stored = _read_json(meta_path)
    if (not options.overwrite and stored and stored.get("parameters") == params
            and stored.get("fingerprint") == inputs_fingerprint and os.path.exists(summary_path)):
        print(f"results for these models and parameters exist: {summary_path} (pass --overwrite to recompute)")
        summary = pd.read_csv(summary_path, sep="\t")
        print_top(summary, options.top_n)
        return {"summary": summary, "summary_path": summary_path, "reused": True, **stored.get("outputs", {})}

    transform = input_transform(models[0], analysis_recipe(models, run))
    split_seed = models_split_seed(models, options.sequences_split)
    table, codes = fluorescence_data(paths, split_seed=split_seed)
    table, codes = background_sequences(table, codes, options.sequences_split, options.max_sequences,
                                        options.background, options.insertion_seed)
    print(f"inserting {len(motifs)} motifs x {options.num_motif_insertions_per_sequence} copies into "
          f"{len(codes)} promoters, each motif with {options.num_null_shuffles} position-shuffled versions as its "
          f"null; {len(models)} model(s), head {head}, device {device}")
    result = run_insertion(models, codes, motifs, head, options.num_motif_insertions_per_sequence,
                           options.insertion_seed, options.batch_size, device, transform, progress=True,
                           num_null_shuffles=options.num_null_shuffles)
    summary = summarise(result, options.alpha)
    save_table(summary, summary_path)
    sequences = table[["source_row", "sequence"] + [c for c in result.cells if c in table.columns]].copy()
    sequences.insert(0, "sequence_index", np.arange(len(sequences)))
    for c, cell in enumerate(result.cells):
        sequences[f"baseline_{cell}"] = result.baseline[:, :, c].mean(axis=0)
        if len(found) > 1:
            for s in range(len(found)):
                sequences[f"baseline_{cell}_seed_{s}"] = result.baseline[s, :, c]
    sequences_path = f"{prefix}_sequences.tsv"
    save_table(sequences, sequences_path)
    outputs = {"summary_path": summary_path, "sequences_path": sequences_path,
               "per_sequence_path": write_per_sequence(result, f"{prefix}_per_sequence_effects",
                                                       options.per_sequence_output)}
    if not options.no_plots:
        outputs.update(write_plots(summary, motifs, prefix, name, top=options.top_n))
    save_json({"parameters": params, "fingerprint": inputs_fingerprint, "outputs": outputs,
               "runs": [m.run for m in found], "cells": result.cells, "num_sequences": int(len(codes)),
               "num_motifs": len(motifs), "split_seed": split_seed, "seconds": time.time() - start}, meta_path)
    print_top(summary, options.top_n)
    print(f"motif effects: {summary_path}")
    for key, value in outputs.items():
        if value and key != "summary_path":
            print(f"{key}: {value}")
    print(f"finished in {time.time() - start:.0f} s")
    return {"summary": summary, "reused": False, **outputs}
