"""In-silico motif insertion analysis of trained models: insert every motif of a MEME file into
the fluorescence promoters, predict with every seed's model, test and rank the effects per cell.
Run with --help for every flag."""

from promoter_modelling.cli.analysis_args import insertion_main
from promoter_modelling.cli.runner import run_cli

if __name__ == "__main__":
    run_cli(insertion_main)
