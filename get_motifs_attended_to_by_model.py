"""Summarise a motif insertion analysis: top motifs per cell, motifs common to all cells,
cell-specific motifs, logos, and the comparison with measured motif effects when available.
Run with --help for every flag."""

from promoter_modelling.cli.analysis_args import attended_main
from promoter_modelling.cli.runner import run_cli

if __name__ == "__main__":
    run_cli(attended_main)
