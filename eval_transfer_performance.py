"""Evaluate a (pretrained) model's head outputs against the fluorescence measurements without
training on them (zero-shot transfer). Run with --help for every flag."""

from promoter_modelling.analysis.transfer import main
from promoter_modelling.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
