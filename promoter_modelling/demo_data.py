"""Write demo / fixture data in the exact raw formats and layout the task loaders read.

    python -m promoter_modelling.demo_data --data_dir DIR [--tasks FluorescenceData ...|all]

With `root_data_dir: DIR` in a config file every generated task works offline. Expression is
driven by planted motifs (fixtures/motifs.py), the known answer the analyses must recover;
`DIR/demo_motifs.meme` holds those motifs and a few decoys.
"""

from __future__ import annotations

import argparse
import importlib
import os

import numpy as np

from promoter_modelling.fixtures.motifs import demo_meme_motifs, meme_text
from promoter_modelling.io_utils import save_text

# task name -> module with generate(data_dir, rng, **options)
GENERATORS: dict[str, str] = {
    "FluorescenceData": "promoter_modelling.fixtures.fluorescence",
    "RNASeq": "promoter_modelling.fixtures.rnaseq",
    "ENCODETFChIPSeq": "promoter_modelling.fixtures.encode",
    "Sharpr_MPRA": "promoter_modelling.fixtures.sharpr",
    "SuRE": "promoter_modelling.fixtures.sure",
}
MEME_FILE = "demo_motifs.meme"


def generate(data_dir: str, tasks: list[str] | None = None, seed: int = 0, **options) -> list[str]:
    """Generate the raw files of `tasks` (default: FluorescenceData; 'all' for every task)."""
    tasks = tasks or ["FluorescenceData"]
    if "all" in tasks:
        tasks = list(GENERATORS)
    unknown = [t for t in tasks if t not in GENERATORS]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; choose from {sorted(GENERATORS)} or all")
    motifs = meme_text(demo_meme_motifs())
    save_text(motifs, os.path.join(data_dir, MEME_FILE))  # save_text creates the folders
    # stands in for the Vierstra consensus motifs that MotifBasedFCN scans by default
    save_text(motifs, os.path.join(data_dir, "common", "consensus_pwms.meme"))
    for i, task in enumerate(tasks):
        rng = np.random.default_rng(seed * 1000 + i)
        module = importlib.import_module(GENERATORS[task])
        task_options = {k: v for k, v in options.items() if v is not None}
        module.generate(data_dir, rng, **task_options) if task == "FluorescenceData" else module.generate(data_dir, rng)
        print(f"wrote {task} fixtures under {data_dir}")
    return tasks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="root data directory to write into")
    parser.add_argument("--tasks", nargs="+", default=["FluorescenceData"],
                        help=f"tasks to generate: {', '.join(GENERATORS)} or all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_sequences", type=int, default=None, help="FluorescenceData promoters (default 3000)")
    args = parser.parse_args(argv)
    generate(args.data_dir, args.tasks, args.seed, num_sequences=args.num_sequences)


if __name__ == "__main__":
    main()
