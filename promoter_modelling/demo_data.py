"""Write demo / fixture data in the exact raw formats and layout the task loaders read.

    promoter-modelling demo-data --data_dir DIR [--tasks FluorescenceData ...|all]

With `root_data_dir: DIR` in a config file every generated task works offline. Expression is
driven by planted motifs (fixtures/motifs.py), the known answer the analyses must recover;
`DIR/demo_motifs.meme` holds those motifs and a few decoys.
"""

from __future__ import annotations

import importlib
import os

import numpy as np

from promoter_modelling.errors import InputError
from promoter_modelling.fixtures.motifs import demo_meme_motifs, meme_text
from promoter_modelling.io_utils import save_text

# task name -> module with generate(data_dir, rng, **options)
GENERATORS: dict[str, str] = {
    "FluorescenceData": "promoter_modelling.fixtures.fluorescence",
    "RNASeq": "promoter_modelling.fixtures.rnaseq",
    "ENCODETFChIPSeq": "promoter_modelling.fixtures.encode",
    "Sharpr_MPRA": "promoter_modelling.fixtures.sharpr",
    "SuRE": "promoter_modelling.fixtures.sure",
    "Malinois_MPRA": "promoter_modelling.fixtures.malinois",
    "lentiMPRA": "promoter_modelling.fixtures.lentimpra",
    "STARRSeq": "promoter_modelling.fixtures.starrseq",
}
MEME_FILE = "demo_motifs.meme"


def generate(data_dir: str, tasks: list[str] | None = None, seed: int = 0, num_sequences: int | None = None) -> list[str]:
    """Generate the raw files of `tasks`.

    Parameters
    ----------
    data_dir : data root to write into (created).
    tasks : task names of GENERATORS, or ["all"] (default: FluorescenceData).
    seed : seed of the generators.
    num_sequences : FluorescenceData promoters (default: the generator's, 3000).

    Returns
    -------
    The task names written.
    """
    tasks = tasks or ["FluorescenceData"]
    if "all" in tasks:
        tasks = list(GENERATORS)
    unknown = [t for t in tasks if t not in GENERATORS]
    if unknown:
        raise InputError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(sorted(GENERATORS))} or all")
    motifs = meme_text(demo_meme_motifs())
    save_text(motifs, os.path.join(data_dir, MEME_FILE))  # save_text creates the folders
    # stands in for the Vierstra consensus motifs that MotifBasedFCN scans by default
    save_text(motifs, os.path.join(data_dir, "common", "consensus_pwms.meme"))
    for i, task in enumerate(tasks):
        rng = np.random.default_rng(seed * 1000 + i)
        module = importlib.import_module(GENERATORS[task])
        if task == "FluorescenceData" and num_sequences is not None:
            module.generate(data_dir, rng, num_sequences=num_sequences)
        else:
            module.generate(data_dir, rng)
        print(f"wrote {task} fixtures under {data_dir}")
    return tasks


if __name__ == "__main__":
    from promoter_modelling.cli.commands import demo_data_main

    demo_data_main()
