"""The command-line layer: every parser of the package, and `promoter-modelling <command>`.

Each command's flags are parsed here once into typed options; nothing below this layer reads an
argparse Namespace. The published top-level scripts (train_models.py, ...) are thin shims over
these functions and accept the published flags verbatim.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from promoter_modelling.cli.runner import run_cli
from promoter_modelling.cli.train_args import add_train_arguments, config_from_args, parse_train_args

__all__ = ["add_train_arguments", "config_from_args", "main", "parse_train_args", "run_cli", "train_main"]


def train_main(argv: list[str] | None = None, splits_script: bool = False) -> None:
    """train_models.py (or, with splits_script, train_models_with_different_fluorescence_data_splits.py)."""
    from promoter_modelling.strategies import run_strategy

    config = run_cli(parse_train_args, argv, splits_script)
    run_cli(run_strategy, config)


def _splits_main(argv: list[str] | None = None) -> None:
    train_main(argv, splits_script=True)


def _analysis(name: str) -> Callable[[list[str] | None], object]:
    def command(argv: list[str] | None = None) -> object:
        from promoter_modelling.cli import analysis_args

        return getattr(analysis_args, name)(argv)

    return command


def _other(name: str) -> Callable[[list[str] | None], object]:
    def command(argv: list[str] | None = None) -> object:
        from promoter_modelling.cli import commands

        return getattr(commands, name)(argv)

    return command


def _interpret(name: str) -> Callable[[list[str] | None], object]:
    def command(argv: list[str] | None = None) -> object:
        if name == "variants_main":
            from promoter_modelling.cli import variants_args

            return variants_args.variants_main(argv)
        from promoter_modelling.cli import interpret_args

        return getattr(interpret_args, name)(argv)

    return command


def _design(argv: list[str] | None = None) -> object:
    from promoter_modelling.cli.design_args import design_main

    return design_main(argv)


COMMANDS: dict[str, tuple[str, Callable[[list[str] | None], object]]] = {
    "train": ("train models (flags of train_models.py)", train_main),
    "train-splits": ("train on several fluorescence data splits (flags of "
                     "train_models_with_different_fluorescence_data_splits.py)", _splits_main),
    "predict": ("predict expression for sequences with trained checkpoints or run folders", _other("predict_main")),
    "import-checkpoint": ("convert a checkpoint of the published code into this package's format",
                          _other("import_main")),
    "motif-insertion": ("in-silico motif insertion analysis (flags of perform_motif_insertion_analysis.py)",
                        _analysis("insertion_main")),
    "attended-motifs": ("motifs a model responds to (flags of get_motifs_attended_to_by_model.py)",
                        _analysis("attended_main")),
    "transfer": ("zero-shot transfer to fluorescence (flags of eval_transfer_performance.py)",
                 _analysis("transfer_main")),
    "demo-data": ("write demo / fixture data in the raw formats of every task", _other("demo_data_main")),
    "compare-models": ("train every backbone on the same fluorescence data and compare them (CPU: small sizes)",
                       _other("compare_main")),
    "design": ("design cell-type-specific promoters with trained models (optionally conservative, COMs)",
               _design),
    "attribute": ("per-base attributions (DeepLIFT/SHAP or in-silico mutagenesis) of trained models",
                  _interpret("attribute_main")),
    "modisco": ("TF-MoDISco motif discovery on attributions, patterns matched to known motifs",
                _interpret("modisco_main")),
    "variants": ("score VCF variants for promoter activity with trained models", _interpret("variants_main")),
    "demo": ("train a small model on generated demo data and analyse it (CPU, minutes)", _analysis("demo_main")),
}


def main(argv: list[str] | None = None) -> None:
    """`promoter-modelling <command> ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: promoter-modelling {" + ",".join(COMMANDS) + "} ...\n")
        for name, (text, _) in COMMANDS.items():
            print(f"  {name:19s}{text}")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nerror: unknown command {argv[0]!r}", file=sys.stderr)
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    command, rest = argv[0], argv[1:]
    run_cli(COMMANDS[command][1], rest)
