"""The flags of the analysis scripts and of the demo, each parser defined once here.

perform_motif_insertion_analysis.py, get_motifs_attended_to_by_model.py and
eval_transfer_performance.py take every training flag (they name the trained models the way
training named them) plus their own. The training part becomes a `RunConfig`
(`train_args.config_from_args`), the rest the analysis's options dataclass; the analyses below
never see the Namespace.
"""

from __future__ import annotations

import argparse

from promoter_modelling.analysis.attended import AttendedOptions, summarise_attended
from promoter_modelling.analysis.insertion import (
    BACKGROUNDS,
    PER_SEQUENCE_FORMATS,
    SPLITS,
    InsertionOptions,
    perform_analysis,
)
from promoter_modelling.analysis.transfer import EVALUATED_TASKS, TransferOptions, evaluate_transfer
from promoter_modelling.cli.train_args import add_train_arguments, config_from_args
from promoter_modelling.run_config import RunConfig

INSERTION_BATCH_SIZE = 2048  # --batch_size default of the insertion analysis (sequences per model pass)
TRANSFER_BATCH_SIZE = 512


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the analyses that predict with the models, beyond the training ones."""
    parser.add_argument("--data_split_seeds", action="store_true",
                        help="use the models of train_models_with_different_fluorescence_data_splits.py "
                             "(runs named <name>_dl_seed_k)")
    parser.add_argument("--device", default="auto", help="auto (GPU when present) | cpu | cuda")


def _run_config(args: argparse.Namespace) -> RunConfig:
    """The training part of an analysis command line; --data_split_seeds selects the runs of the
    data-split script (`RunConfig.data_split_seeds`)."""
    return config_from_args(args, splits_script=bool(getattr(args, "data_split_seeds", False)))


# --- perform_motif_insertion_analysis.py ------------------------------------------------------------

def insertion_parser() -> argparse.ArgumentParser:
    """Every flag of perform_motif_insertion_analysis.py (the training flags plus the analysis's)."""
    parser = argparse.ArgumentParser(prog="perform_motif_insertion_analysis.py",
                                     description="In-silico motif insertion analysis of trained models")
    add_train_arguments(parser)
    p = parser.add_argument
    p("--meme_file", default=None, help="MEME motif file (default: the bundled JASPAR CORE vertebrates file)")
    p("--num_motif_insertions_per_sequence", type=int, default=10, help="copies of a motif written into each promoter")
    p("--insertion_seed", type=int, default=97, help="seed of the insertion positions and sampled instances")
    p("--sequences_split", default="all", choices=SPLITS,
      help="promoters inserted into (published: all; a split is the one the models were trained on)")
    p("--max_sequences", type=int, default=None, help="analyse a random subset of this many promoters")
    p("--background", default="sequences", choices=BACKGROUNDS,
      help="insert into the promoters themselves (published) or into dinucleotide-shuffled copies")
    p("--head", default=None, help="head analysed (default: the fluorescence head)")
    p("--alpha", type=float, default=0.05, help="q-value threshold for significance")
    p("--num_null_shuffles", type=int, default=5,
      help="position-shuffled versions of each motif inserted as its null (0: none; otherwise at least 2)")
    p("--top_n", type=int, default=10, help="motifs printed and drawn per cell and direction")
    p("--per_sequence_output", default="parquet", choices=PER_SEQUENCE_FORMATS,
      help="format of the per-promoter effects table")
    p("--no_plots", action="store_true")
    # --overwrite (a training flag too) recomputes even when results for the same inputs exist
    _add_model_flags(parser)
    parser.set_defaults(batch_size=INSERTION_BATCH_SIZE)
    return parser


def insertion_options(args: argparse.Namespace) -> InsertionOptions:
    """The analysis part of a parsed insertion command line."""
    return InsertionOptions(
        meme_file=args.meme_file, num_motif_insertions_per_sequence=args.num_motif_insertions_per_sequence,
        insertion_seed=args.insertion_seed, sequences_split=args.sequences_split, max_sequences=args.max_sequences,
        background=args.background, head=args.head, alpha=args.alpha, top_n=args.top_n,
        num_null_shuffles=args.num_null_shuffles,
        per_sequence_output=args.per_sequence_output, no_plots=args.no_plots, overwrite=args.overwrite,
        batch_size=args.batch_size, device=args.device)


def insertion_main(argv: list[str] | None = None) -> dict:
    """perform_motif_insertion_analysis.py: parse the flags and run `insertion.perform_analysis`.

    Parameters
    ----------
    argv : the flags (default: sys.argv[1:]).

    Returns
    -------
    What `perform_analysis` returns (summary table, output paths, whether results were reused).
    """
    args = insertion_parser().parse_args(argv)
    return perform_analysis(_run_config(args), insertion_options(args))


# --- get_motifs_attended_to_by_model.py -------------------------------------------------------------

def attended_parser() -> argparse.ArgumentParser:
    """Every flag of get_motifs_attended_to_by_model.py."""
    parser = argparse.ArgumentParser(prog="get_motifs_attended_to_by_model.py",
                                     description="Summarise which motifs a model responds to (after "
                                                 "perform_motif_insertion_analysis.py)")
    add_train_arguments(parser)
    p = parser.add_argument
    p("--top_n_motifs_to_print", type=int, default=50, help="motifs printed per cell and direction")
    p("--max_logos", type=int, default=20, help="logos drawn per figure (at most top_n_motifs_to_print)")
    p("--logo_dpi", type=int, default=150)
    p("--meme_file", default=None, help="motif matrices for the logos (default: the file the insertion analysis used)")
    p("--keep_homer", action="store_true", help="keep HOMER motifs (published: dropped)")
    p("--skip_download", action="store_true", help="do not fetch the published occurrence and t-test tables")
    return parser


def attended_options(args: argparse.Namespace) -> AttendedOptions:
    """The analysis part of a parsed get_motifs_attended_to_by_model command line."""
    return AttendedOptions(top_n_motifs_to_print=args.top_n_motifs_to_print, max_logos=args.max_logos,
                           logo_dpi=args.logo_dpi, meme_file=args.meme_file, keep_homer=args.keep_homer,
                           skip_download=args.skip_download)


def attended_main(argv: list[str] | None = None) -> dict:
    """get_motifs_attended_to_by_model.py: parse the flags and run `attended.summarise_attended`.

    Parameters
    ----------
    argv : the flags (default: sys.argv[1:]).

    Returns
    -------
    What `summarise_attended` returns (summary table, top motifs, output paths).
    """
    args = attended_parser().parse_args(argv)
    return summarise_attended(_run_config(args), attended_options(args))


# --- eval_transfer_performance.py -------------------------------------------------------------------

def transfer_parser() -> argparse.ArgumentParser:
    """Every flag of eval_transfer_performance.py."""
    parser = argparse.ArgumentParser(prog="eval_transfer_performance.py",
                                     description="Compare a trained model's head outputs with the fluorescence "
                                                 "measurements (zero-shot transfer)")
    add_train_arguments(parser)
    parser.add_argument("--task_to_evaluate", default="FluorescenceData", choices=EVALUATED_TASKS)
    parser.add_argument("--output_inds_to_compare", required=True,
                        help="space-separated groups, one per head group, each with one comma-separated head "
                             "output index per evaluated output (-1 skips), e.g. \"33,-1,55 88,12,21\"")
    _add_model_flags(parser)
    parser.set_defaults(batch_size=TRANSFER_BATCH_SIZE)
    return parser


def transfer_options(args: argparse.Namespace) -> TransferOptions:
    """The analysis part of a parsed eval_transfer_performance command line."""
    return TransferOptions(output_inds_to_compare=args.output_inds_to_compare, task_to_evaluate=args.task_to_evaluate,
                           batch_size=args.batch_size, device=args.device)


def transfer_main(argv: list[str] | None = None) -> dict:
    """eval_transfer_performance.py: parse the flags and run `transfer.evaluate_transfer`.

    Parameters
    ----------
    argv : the flags (default: sys.argv[1:]).

    Returns
    -------
    What `evaluate_transfer` returns (correlation table, output paths, evaluated checkpoint).
    """
    args = transfer_parser().parse_args(argv)
    return evaluate_transfer(_run_config(args), transfer_options(args))


# --- promoter-modelling demo ------------------------------------------------------------------------

def demo_parser() -> argparse.ArgumentParser:
    """Flags of `promoter-modelling demo`."""
    from promoter_modelling import demo

    parser = argparse.ArgumentParser(prog="promoter-modelling demo", description=demo.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="demo_output", help="data, results and config.json go here")
    parser.add_argument("--num_sequences", type=int, default=demo.DEMO_NUM_SEQUENCES,
                        help="promoters of the generated demo data")
    parser.add_argument("--max_epochs", type=int, default=None,
                        help=f"training epochs (default {demo.DEMO_MAX_EPOCHS}, with early stopping)")
    return parser


def demo_main(argv: list[str] | None = None) -> None:
    """`promoter-modelling demo`: generate demo data, train a small model, analyse its motifs.

    Parameters
    ----------
    argv : the flags (default: sys.argv[1:]).
    """
    from promoter_modelling.demo import run_demo

    args = demo_parser().parse_args(argv)
    run_demo(args.output_dir, args.num_sequences, args.max_epochs)
