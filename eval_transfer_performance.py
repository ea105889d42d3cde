"""Evaluate a (pretrained) model's head outputs against the fluorescence measurements without
training on them (zero-shot transfer). Run with --help for every flag."""

from promoter_modelling.cli.analysis_args import transfer_main
from promoter_modelling.cli.runner import run_cli

if __name__ == "__main__":
    run_cli(transfer_main)
