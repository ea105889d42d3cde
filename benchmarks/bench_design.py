"""Promoter design on the demo data, judged by the demo's known expression function (the oracle).

    python benchmarks/bench_design.py --work_dir bench_design                # trains 5 seeds first
    python benchmarks/bench_design.py --work_dir bench_design --cells K562 --compare_conservative

The ensemble is the demo's model (small MTLucifer, the demo's recipe: lr 1e-3, weight decay
1e-4, batch 64, up to 8 epochs) trained with 5 seeds on 2,500 demo promoters; finished runs in
--work_dir are reused. For each cell, `promoter-modelling design`'s workflow designs
--num_designs promoters of 250 bp (defaults: gradient ascent, 150 steps, 2 candidates per
design, spread penalty 1) and the script prints:

- the wall time of the design run (ensemble predictions, optimisation, scoring, selection,
  motif scan and report);
- the oracle specificity (target minus the mean of the other cells, noise-free log2 activity
  of the planted motifs, `fixtures.motifs.oracle_activity`) of the designs: best, median, and
  the fraction above the best training promoter, against that best training promoter;
- per planted motif, the mean number of copies in the designs and in the training promoters,
  and the share of designs whose motif scan (`designs.tsv`, scanned with the demo's MEME file)
  lists it.

--compare_conservative also designs with conservative (COMs) models at the same budget
(same starts, steps and step size) and prints both runs' oracle figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np


def train_ensemble(work_dir: str, seeds: int) -> list[str]:
    """Run folders of the demo's model trained with `seeds` seeds (reused when finished)."""
    from promoter_modelling.demo import DEMO_NUM_SEQUENCES, demo_config
    from promoter_modelling.demo_data import generate
    from promoter_modelling.strategies import run_strategy

    data_dir = os.path.join(work_dir, "data")
    config_path = os.path.join(work_dir, "config.json")
    os.makedirs(work_dir, exist_ok=True)
    if not os.path.exists(os.path.join(data_dir, "FluorescenceData", "Raw_Promoter_Counts.csv")):
        generate(data_dir, ["FluorescenceData"], seed=0, num_sequences=DEMO_NUM_SEQUENCES)
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump({"root_dir": os.path.join(work_dir, "results"), "root_data_dir": data_dir}, handle)
    config = demo_config(config_path)
    config = dataclasses.replace(config, num_seeds=seeds, flags={**config.flags, "num_random_seeds": seeds})
    run_strategy(config)
    saved = os.path.join(work_dir, "results", "saved_models")
    return [os.path.join(saved, f"individual_training_on_FluorescenceData_small_seed_{s}") for s in range(seeds)]


def oracle_figures(codes: np.ndarray, target: int, best_training: float) -> str:
    from promoter_modelling.design.objective import specificity
    from promoter_modelling.fixtures.motifs import oracle_activity

    values = specificity(oracle_activity(codes), target, "mean")
    return (f"oracle specificity best {values.max():.2f}, median {np.median(values):.2f}, mean {values.mean():.2f}, "
            f"{(values > best_training).mean():.0%} above the best training promoter ({best_training:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", default="bench_design")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--run_dir", nargs="+", default=None,
                        help="trained run folders of the demo's model to use instead of training in --work_dir "
                             "(--work_dir then needs the config.json naming their data)")
    parser.add_argument("--cells", default="JURKAT,K562,THP1")
    parser.add_argument("--num_designs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--compare_conservative", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()

    import torch

    from promoter_modelling import sequence as seqlib
    from promoter_modelling.config import load_paths
    from promoter_modelling.design import search, workflow
    from promoter_modelling.design.objective import specificity
    from promoter_modelling.fixtures.motifs import CELLS, PLANTED_MOTIFS, oracle_activity, oracle_counts
    from promoter_modelling.predict import run_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    runs = args.run_dir or train_ensemble(os.path.abspath(args.work_dir), args.seeds)
    checkpoints = [run_checkpoint(r) for r in runs]
    paths = load_paths(os.path.join(os.path.abspath(args.work_dir), "config.json"))
    print(f"ensemble: {len(checkpoints)} small MTLucifer seeds; torch threads {torch.get_num_threads()}")
    meme_file = os.path.join(paths.root_data_dir, "demo_motifs.meme")  # the scan then names the planted motifs
    for cell in args.cells.split(","):
        target = CELLS.index(cell)
        runs_of_cell = [("plain", False)] + ([("conservative", True)] if args.compare_conservative else [])
        for label, conservative in runs_of_cell:
            options = workflow.DesignOptions(target_cell=cell, num_designs=args.num_designs, conservative=conservative,
                                             search=search.SearchOptions(steps=args.steps), progress=False,
                                             meme_file=meme_file if os.path.exists(meme_file) else None)
            out = os.path.join(args.work_dir, f"designs_{cell}_{label}")
            began = time.time()
            designs = workflow.design_promoters(checkpoints, options, out, paths, overwrite=True)
            seconds = time.time() - began
            codes = seqlib.encode(designs["sequence"].tolist())
            training = workflow.training_promoters(paths, workflow.Ensemble(checkpoints[:1], cell))
            best_training = specificity(oracle_activity(training.codes), target, "mean").max()
            print(f"{cell} {label}: {len(designs)} designs of 250 bp in {seconds:.0f} s; "
                  + oracle_figures(codes, target, best_training))
            design_copies, training_copies = oracle_counts(codes).mean(axis=0), oracle_counts(training.codes).mean(axis=0)
            print("    planted motif copies per promoter (designs / training): " + ", ".join(
                f"{name} {d:.2f}/{t:.2f}" for name, d, t in zip(PLANTED_MOTIFS, design_copies, training_copies)))
            scanned = designs["motif_hits"].fillna("")
            print("    designs whose motif scan (designs.tsv motif_hits) finds each planted motif: " + ", ".join(
                f"{name} {scanned.str.contains(name).mean():.0%}" for name in PLANTED_MOTIFS))


if __name__ == "__main__":
    main()
