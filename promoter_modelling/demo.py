"""The demo: generate demo data, train a small MTLucifer on CPU, report test metrics, a plot
and a checkpoint, then rank motifs by in-silico insertion.

    python -m promoter_modelling.demo --output_dir demo_output
"""

from __future__ import annotations

import argparse
import os
import time

from promoter_modelling.cli import parse_train_args, run_cli
from promoter_modelling.demo_data import generate
from promoter_modelling.io_utils import save_json

DEMO_TRAIN_FLAGS = ["--modelling_strategy", "single_task", "--single_task", "FluorescenceData",
                    "--model_size", "small", "--lr", "1e-3", "--weight_decay", "1e-4", "--batch_size", "64",
                    "--max_epochs", "8", "--patience", "3", "--num_random_seeds", "1", "--loggers", "csv"]


def run_demo(output_dir: str, num_sequences: int = 2500, max_epochs: int | None = None) -> dict:
    """Run the demo end to end; returns the training summary."""
    from promoter_modelling.strategies import run_strategy

    start = time.time()
    output_dir = os.path.abspath(output_dir)
    data_dir = os.path.join(output_dir, "data")
    config_path = os.path.join(output_dir, "config.json")
    os.makedirs(output_dir, exist_ok=True)
    if not os.path.exists(os.path.join(data_dir, "FluorescenceData", "Raw_Promoter_Counts.csv")):
        generate(data_dir, ["FluorescenceData"], seed=0, num_sequences=num_sequences)
    save_json({"root_dir": os.path.join(output_dir, "results"), "root_data_dir": data_dir}, config_path)
    flags = DEMO_TRAIN_FLAGS + ["--config_path", config_path]
    if max_epochs is not None:
        flags += ["--max_epochs", str(max_epochs)]
    args = parse_train_args(flags)
    summary = run_strategy(args)[0]
    print()
    print("DEMO RESULTS (test split)")
    for cell in ("JURKAT", "K562", "THP1"):
        print(f"  {cell:7s} Pearson r = {summary[f'{cell}_avg_PearsonR']:.3f}   "
              f"Spearman rho = {summary[f'{cell}_avg_SpearmanR']:.3f}")
    print(f"  scatter plot: {summary.get('best_model_plot')}")
    print_demo_motifs(flags, data_dir)
    print(f"  finished in {time.time() - start:.0f} s")
    return summary


def print_demo_motifs(flags: list[str], data_dir: str, num_sequences: int = 400) -> None:
    """Motif insertion analysis of the demo model with the demo motifs (planted + decoys); prints
    each cell's top motifs next to the planted answer."""
    from promoter_modelling.analysis.insertion import main as insertion_main
    from promoter_modelling.fixtures.motifs import CELLS, PLANTED_MOTIFS

    print()
    out = insertion_main(flags + ["--meme_file", os.path.join(data_dir, "demo_motifs.meme"), "--batch_size", "512",
                                  "--max_sequences", str(num_sequences), "--top_n", "3"])
    print()
    print("DEMO MOTIFS (in-silico insertion; planted motifs that raise each cell's expression in brackets)")
    for c, cell in enumerate(CELLS):
        top = out["summary"][out["summary"]["cell"] == cell].sort_values("rank_up").head(3)
        planted = [name for name, (_, effects) in PLANTED_MOTIFS.items() if effects[c] >= 0.5]
        print(f"  {cell:7s} " + ", ".join(f"{r.motif} ({r.mean_effect:+.2f})" for r in top.itertuples())
              + f"   [{', '.join(planted)}]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--num_sequences", type=int, default=2500)
    parser.add_argument("--max_epochs", type=int, default=None)
    args = parser.parse_args(argv)
    run_cli(run_demo, args.output_dir, args.num_sequences, args.max_epochs)


if __name__ == "__main__":
    main()
