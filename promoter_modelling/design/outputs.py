"""The files a design run writes (all atomically; `design.json` last, so its presence marks a
finished run):

- `designs.fa`: the chosen designs, headers `>id specificity=... spread=...`;
- `designs.tsv`: one row per design: sequence, ensemble mean (`pred_<cell>`) and standard
  deviation (`spread_<cell>`) per cell, specificity and its spread, ranking score, GC, start,
  edits from the start, distance to and id of the nearest training promoter, motif hits;
- `candidates.tsv`: every optimised candidate, with `chosen`;
- `motif_enrichment.tsv`: motifs in the designs against the training promoters;
- `specificity.png`, `enriched_motifs.png`: the figures;
- `design.json`: checkpoints, options and run time.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from promoter_modelling import sequence as seqlib
from promoter_modelling.design import report
from promoter_modelling.design.objective import specificity
from promoter_modelling.io_utils import save_json, save_table

MAX_BACKGROUND = 5000  # training promoters scanned for the enrichment background (a random subset beyond)


def write_report(output_dir: str, designs: pd.DataFrame, candidates: pd.DataFrame, options, ensemble,
                 training, training_predictions: np.ndarray | None,
                 record: dict) -> tuple[pd.DataFrame, dict[str, str]]:
    """Write every output of a design run into `output_dir`.

    Parameters
    ----------
    output_dir : destination folder (created).
    designs : the chosen designs (`workflow.design_promoters`).
    candidates : every optimised candidate.
    options : the run's DesignOptions.
    ensemble : the Ensemble that scored the designs.
    training : TrainingPromoters or None.
    training_predictions : ensemble predictions (members, N, cells) of the training promoters.
    record : what design.json stores.

    Returns
    -------
    The designs as written to designs.tsv (with `motif_hits`), and name -> path of the files.
    """
    os.makedirs(output_dir, exist_ok=True)
    files: dict[str, str] = {}
    target = options.target_cell
    if len(designs):
        counts, motifs = report.motif_hit_table(designs["sequence"].tolist(), options.meme_file)
        designs = designs.assign(motif_hits=report.hit_summary(counts))
    else:
        counts, motifs = None, []
        designs = designs.assign(motif_hits=[])
    descriptions = [f"specificity={s:.3f} spread={d:.3f} target={target}"
                    for s, d in zip(designs["specificity"], designs["specificity_spread"])]
    files["fasta"] = report.write_fasta(designs["id"].tolist(), designs["sequence"].tolist(),
                                        os.path.join(output_dir, "designs.fa"), descriptions)
    files["designs"] = os.path.join(output_dir, "designs.tsv")
    save_table(designs, files["designs"])
    files["candidates"] = os.path.join(output_dir, "candidates.tsv")
    save_table(candidates, files["candidates"])
    if training is not None and training_predictions is not None:
        training_spec = specificity(training_predictions, ensemble.target, options.objective).mean(axis=0)
        files["specificity_plot"] = report.plot_specificity(
            designs["specificity"].to_numpy(), training_spec, os.path.join(output_dir, "specificity.png"), target,
            label=f"predicted {options.objective} specificity")
        if counts is not None:
            rng = np.random.default_rng([options.seed, 3])
            rows = np.arange(len(training.codes))
            if len(rows) > MAX_BACKGROUND:
                rows = np.sort(rng.choice(rows, MAX_BACKGROUND, replace=False))
            background, _ = report.motif_hit_table(seqlib.decode(training.codes[rows]), options.meme_file)
            enrichment = report.motif_enrichment(counts, background)
            files["enrichment"] = os.path.join(output_dir, "motif_enrichment.tsv")
            save_table(enrichment, files["enrichment"])
            logos = report.plot_enriched_logos(enrichment, motifs, os.path.join(output_dir, "enriched_motifs.png"))
            if logos:
                files["enriched_logos"] = logos
    record = dict(record, files={k: os.path.basename(v) for k, v in files.items()}, num_designs=len(designs))
    files["record"] = os.path.join(output_dir, "design.json")
    save_json(record, files["record"])
    return designs, files
