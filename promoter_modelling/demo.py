"""The demo: generate demo data, train a small MTLucifer on CPU, report test metrics, a plot
and a checkpoint, then rank motifs by in-silico insertion.

    python -m promoter_modelling.demo --output_dir demo_output
"""

from __future__ import annotations

import argparse
import json
import os
import time

from promoter_modelling.cli import parse_train_args, run_cli
from promoter_modelling.demo_data import generate

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
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump({"root_dir": os.path.join(output_dir, "results"), "root_data_dir": data_dir}, handle, indent=2)
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
    print(f"  finished in {time.time() - start:.0f} s")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--num_sequences", type=int, default=2500)
    parser.add_argument("--max_epochs", type=int, default=None)
    args = parser.parse_args(argv)
    run_cli(run_demo, args.output_dir, args.num_sequences, args.max_epochs)


if __name__ == "__main__":
    main()
