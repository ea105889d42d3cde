"""The demo: generate demo data, train a small MTLucifer on CPU, report test metrics, a plot
and a checkpoint, then rank motifs by in-silico insertion.

    promoter-modelling demo --output_dir demo_output
"""

from __future__ import annotations

import os
import time

from promoter_modelling.demo_data import generate
from promoter_modelling.io_utils import save_json
from promoter_modelling.run_config import (
    LoggingOptions,
    ModelChoice,
    PhaseHyperparameters,
    RunConfig,
    TaskChoice,
    TrainerOptions,
)

DEMO_NUM_SEQUENCES = 2500
DEMO_MAX_EPOCHS = 8
DEMO_ANALYSED_SEQUENCES = 400


def demo_config(config_path: str, max_epochs: int | None = None) -> RunConfig:
    """The demo's training run: single_task FluorescenceData, small MTLucifer, lr 1e-3, weight
    decay 1e-4, batch 64, up to 8 epochs (patience 3), one seed, CSV logs only.

    Parameters
    ----------
    config_path : the config.json naming the demo's results and data directories.
    max_epochs : training epochs instead of 8.

    Returns
    -------
    RunConfig
    """
    epochs = DEMO_MAX_EPOCHS if max_epochs is None else max_epochs
    flags = {"modelling_strategy": "single_task", "single_task": "FluorescenceData", "model_size": "small",
             "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 64, "max_epochs": epochs, "patience": 3,
             "num_random_seeds": 1, "loggers": "csv", "config_path": config_path}
    return RunConfig(config_path=config_path, strategy="single_task", tasks=TaskChoice(single_task="FluorescenceData"),
                     model=ModelChoice(size="small"),
                     final=PhaseHyperparameters(lr=1e-3, weight_decay=1e-4, batch_size=64, max_epochs=epochs),
                     trainer=TrainerOptions(patience=3), logging=LoggingOptions(loggers=("csv",)), num_seeds=1,
                     flags=flags)


def run_demo(output_dir: str, num_sequences: int = DEMO_NUM_SEQUENCES, max_epochs: int | None = None) -> dict:
    """Run the demo end to end.

    Parameters
    ----------
    output_dir : where the demo data (`data/`), results (`results/`) and config.json go.
    num_sequences : promoters of the generated demo data.
    max_epochs : training epochs (default 8, with early stopping).

    Returns
    -------
    The training summary (test metrics per cell, `best_model_plot`, ...).
    """
    from promoter_modelling.strategies import run_strategy

    start = time.time()
    output_dir = os.path.abspath(output_dir)
    data_dir = os.path.join(output_dir, "data")
    config_path = os.path.join(output_dir, "config.json")
    os.makedirs(output_dir, exist_ok=True)
    if not os.path.exists(os.path.join(data_dir, "FluorescenceData", "Raw_Promoter_Counts.csv")):
        generate(data_dir, ["FluorescenceData"], seed=0, num_sequences=num_sequences)
    save_json({"root_dir": os.path.join(output_dir, "results"), "root_data_dir": data_dir}, config_path)
    config = demo_config(config_path, max_epochs)
    summary = run_strategy(config)[0]
    print()
    print("DEMO RESULTS (test split)")
    for cell in ("JURKAT", "K562", "THP1"):
        print(f"  {cell:7s} Pearson r = {summary[f'{cell}_avg_PearsonR']:.3f}   "
              f"Spearman rho = {summary[f'{cell}_avg_SpearmanR']:.3f}")
    print(f"  scatter plot: {summary.get('best_model_plot')}")
    print_demo_motifs(config, data_dir)
    print(f"  finished in {time.time() - start:.0f} s")
    return summary


def print_demo_motifs(config: RunConfig, data_dir: str, num_sequences: int = DEMO_ANALYSED_SEQUENCES) -> dict:
    """Motif insertion analysis of the demo model with the demo motifs (planted + decoys); prints
    each cell's top motifs next to the planted answer.

    Parameters
    ----------
    config : the demo's training run (names the model analysed).
    data_dir : the demo data root (holds demo_motifs.meme).
    num_sequences : promoters inserted into (a random subset).

    Returns
    -------
    What `insertion.perform_analysis` returns.
    """
    from promoter_modelling.analysis.insertion import InsertionOptions, perform_analysis
    from promoter_modelling.fixtures.motifs import CELLS, PLANTED_MOTIFS

    print()
    options = InsertionOptions(meme_file=os.path.join(data_dir, "demo_motifs.meme"), batch_size=512,
                               max_sequences=num_sequences, top_n=3)
    out = perform_analysis(config, options)
    print()
    print("DEMO MOTIFS (in-silico insertion; planted motifs that raise each cell's expression in brackets)")
    for c, cell in enumerate(CELLS):
        top = out["summary"][out["summary"]["cell"] == cell].sort_values("rank_up").head(3)
        planted = [name for name, (_, effects) in PLANTED_MOTIFS.items() if effects[c] >= 0.5]
        print(f"  {cell:7s} " + ", ".join(f"{r.motif} ({r.mean_effect:+.2f})" for r in top.itertuples())
              + f"   [{', '.join(planted)}]")
    return out
