"""The flags naming an ensemble of trained models, shared by design, attribute and variants."""

from __future__ import annotations

import argparse

from promoter_modelling.errors import InputError


def add_ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    """--checkpoint and --run_dir, each repeatable; together they name the ensemble's members."""
    parser.add_argument("--checkpoint", action="extend", nargs="+", default=None, help="checkpoint(s) of the ensemble")
    parser.add_argument("--run_dir", action="extend", nargs="+", default=None,
                        help="trained run folder(s) (saved_models/<run>): their best checkpoints join the ensemble")


def ensemble_checkpoints(args: argparse.Namespace) -> list[str]:
    """The checkpoints the flags name (a run folder's best checkpoint); none is refused in one line."""
    from promoter_modelling.predict import run_checkpoint

    checkpoints = list(args.checkpoint or []) + [run_checkpoint(d) for d in args.run_dir or []]
    if not checkpoints:
        raise InputError("give the models with --checkpoint FILE or --run_dir saved_models/<run> (several: an ensemble)")
    return checkpoints
