"""In-silico motif insertion: how much does each motif change a model's predicted expression?

For every motif of a MEME file, `n` instances sampled from its matrix overwrite random windows
of every background promoter (starts uniform in [0, L - width), forward strand, overlaps
allowed, length kept: the published procedure). Every seed's model predicts the promoters with
and without the insertions; the per-promoter effect is the seed-averaged difference per cell.
Per motif and cell the mean effect is tested against zero over promoters (one-sample t-test on
the paired differences, Benjamini-Hochberg across motifs within each cell), and motifs are
ranked per cell (rank_up: strongest increase first; rank_down: strongest decrease first).

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


# --- insertion -----------------------------------------------------------------------------------

def insert_motif(codes: np.ndarray, pwm: np.ndarray, n_insertions: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overwrite `n_insertions` sampled instances of a (width, 4) motif into every row of uint8
    codes (N, L). Returns (new codes, starts (N, n), instances (N, n, width)).

    Starts are uniform in [0, L - width) (exclusive bound, as published); copies are written in
    order, so a later copy overwrites an earlier one where they overlap. Vectorised over rows.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise InputError(f"background codes must be (sequences, length), got shape {codes.shape}")
    n, length = codes.shape
    width = int(np.asarray(pwm).shape[0])
    if width >= length:
        raise InputError(f"a motif of width {width} does not fit into {length}-bp sequences")
    starts = rng.integers(0, length - width, size=(n, n_insertions))
    instances = sample_instances(pwm, n * n_insertions, rng).reshape(n, n_insertions, width)
    out = codes.copy()
    rows = np.arange(n)[:, None]
    offsets = np.arange(width)
    for j in range(n_insertions):  # n is small (10); every step is vectorised over all sequences
        out[rows, starts[:, j, None] + offsets] = instances[:, j]
    return out, starts, instances


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
    (motifs, N, K) and each seed's mean effect (motifs, seeds, K)."""

    motifs: list[Motif]
    cells: list[str]
    baseline: np.ndarray
    effects: np.ndarray
    seed_mean_effects: np.ndarray


def run_insertion(models: list, codes: np.ndarray, motifs: list[Motif], head: str, n_insertions: int = 10,
                  seed: int = 97, batch_size: int = 2048, device=None,
                  transform: Callable[[np.ndarray], np.ndarray] | None = None,
                  progress: bool = False) -> InsertionResult:
    """Insert every motif into every background promoter and predict with every model.

    The baseline is predicted once per promoter and model; each motif costs one pass of every
    model over the promoters (motifs are pooled into one pass when the promoters fill less than
    a batch).

    Parameters
    ----------
    models : the models (one per seed), all reading the same inputs.
    codes : uint8 codes (N, L) of the background promoters.
    motifs : the motifs inserted (`analysis.motifs.read_motifs`).
    head : the head whose outputs are compared.
    n_insertions : copies of a motif written into each promoter.
    seed : seed of the insertions (each motif has its own stream, `motif_rng`).
    batch_size : sequences per model pass.
    device : torch device (None: GPU when present).
    transform : codes -> model inputs (`input_transform`; None for one-hot models).
    progress : show a progress bar over motifs.

    Returns
    -------
    InsertionResult with the baseline predictions (seeds, N, K), the seed-averaged per-promoter
    effects (motifs, N, K) and each seed's mean effect (motifs, seeds, K).
    """
    if not models:
        raise InputError("motif insertion needs at least one trained model")
    if not motifs:
        raise InputError("motif insertion needs at least one motif")
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    baseline = predict_seeds(models, codes, head, batch_size, device, transform)  # (S, N, K)
    seeds, n, k = baseline.shape
    effects = np.empty((len(motifs), n, k), dtype=np.float32)
    seed_means = np.empty((len(motifs), seeds, k), dtype=np.float64)
    iterator = motifs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(motifs, desc="motifs", unit="motif")
    # Few promoters: several motifs share one model pass, so batches stay full (GPU efficiency).
    per_pass = max(1, batch_size // max(n, 1))
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        stacked = np.concatenate([codes_ for _, codes_ in pending])
        predictions = predict_seeds(models, stacked, head, batch_size, device, transform)
        for j, (index, _) in enumerate(pending):
            diff = predictions[:, j * n:(j + 1) * n] - baseline
            effects[index] = diff.mean(axis=0)
            seed_means[index] = diff.mean(axis=1)
        pending.clear()

    for i, motif in enumerate(iterator):
        pending.append((i, insert_motif(codes, motif.pwm, n_insertions, motif_rng(seed, motif.name))[0]))
        if len(pending) == per_pass:
            flush()
    if pending:
        flush()
    return InsertionResult(list(motifs), _output_names(models[0], head, k), baseline, effects, seed_means)


def _output_names(model, head: str, k: int) -> list[str]:
    for spec in getattr(model, "head_specs", []):
        if spec.name == head:
            return list(spec.output_names)
    return [f"output_{i}" for i in range(k)]


# --- statistics ----------------------------------------------------------------------------------

def summarise(result: InsertionResult, alpha: float = 0.05) -> pd.DataFrame:
    """One row per motif and cell: mean/median/std/sem of the per-promoter effect, one-sample
    t-test against 0, BH q-value across motifs (per cell), significance and ranks."""
    effects = result.effects.astype(np.float64)
    m, n, k = effects.shape
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
    frame = pd.DataFrame({
        "motif": np.repeat([mo.name for mo in result.motifs], k),
        "alt_name": np.repeat([mo.alt_name for mo in result.motifs], k),
        "label": np.repeat([mo.label for mo in result.motifs], k),
        "width": np.repeat([mo.width for mo in result.motifs], k),
        "cell": np.tile(result.cells, m),
        "n_sequences": n,
        "mean_effect": mean.ravel(),
        "median_effect": np.median(effects, axis=1).ravel(),
        "std_effect": std.ravel(),
        "sem_effect": sem.ravel(),
        "t_statistic": t_stat.ravel(),
        "p_value": p_value.ravel(),
        "q_value": q_value.ravel(),
    })
    frame["significant"] = frame["q_value"] < alpha
    frame["direction"] = np.where(frame["mean_effect"] >= 0, "up", "down")
    frame["rank_up"] = rank_up.ravel()
    frame["rank_down"] = rank_down.ravel()
    for s in range(result.seed_mean_effects.shape[1]):
        frame[f"mean_effect_seed_{s}"] = result.seed_mean_effects[:, s, :].ravel()
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
        if _input_part(other) != _input_part(first):
            raise InputError("the analysed models read sequences differently (different input kinds, tokenizers "
                             "or motif files in their checkpoints); analyse them separately")
    return first.with_overrides(meme_file=run.data.motif_meme_file, dnabert_path=run.data.dnabert_path)


def _input_part(recipe: InputRecipe) -> tuple:
    vocab = None if recipe.vocab is None else json.dumps(dict(recipe.vocab), sort_keys=True)
    return recipe.kind, vocab, recipe.meme_text, json.dumps(dict(recipe.motif_params), sort_keys=True)


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
    alpha : q-value threshold for significance.
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
    out = {"heatmap": plots.effect_heatmap(shown, significant.rename(index=labels), f"{prefix}_effects_heatmap.png",
                                           f"{title}\nmean predicted change on insertion ('*': significant)"),
           "bars": plots.top_motif_bars(summary, cells, f"{prefix}_top_motifs.png", top=top)}
    by_name = {m.name: m for m in motifs}
    for cell in cells:
        chosen = top_motifs(summary, cell, min(top, 10), "up")
        chosen = chosen[chosen["mean_effect"] > 0]
        titles = [f"{row.label}  ({row.mean_effect:+.3g}, q={row.q_value:.2g})" for row in chosen.itertuples()]
        path = plots.logo_grid([by_name[name].pwm for name in chosen["motif"]], titles,
                               f"{prefix}_{cell}_top_motif_logos.png", f"{cell}: motifs that raise expression most")
        if path:
            out[f"logos_{cell}"] = path
    return out


def print_top(summary: pd.DataFrame, n: int = 10) -> None:
    """Print each cell's strongest activating and repressing motifs (rank, effect, q-value)."""
    for cell in dict.fromkeys(summary["cell"]):
        for direction, word in (("up", "raise"), ("down", "lower")):
            rows = top_motifs(summary, cell, n, direction)
            rows = rows[rows["mean_effect"] > 0] if direction == "up" else rows[rows["mean_effect"] < 0]
            print(f"{cell}: {len(rows)} motif(s) that {word} expression most ('*' significant)")
            for row in rows.itertuples():
                flag = "*" if row.significant else " "
                rank = row.rank_up if direction == "up" else row.rank_down
                print(f"  {rank:4d}. {row.label:32.32s} effect {row.mean_effect:+.4f} +- {row.sem_effect:.4f}  "
                      f"q={row.q_value:.2e} {flag}")


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
          f"{len(codes)} promoters; {len(models)} model(s), head {head}, device {device}")
    result = run_insertion(models, codes, motifs, head, options.num_motif_insertions_per_sequence,
                           options.insertion_seed, options.batch_size, device, transform, progress=True)
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
