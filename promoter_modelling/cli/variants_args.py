"""`promoter-modelling variants`: the command line of variant effect scoring, parsed into VariantOptions."""

from __future__ import annotations

import argparse
import re
from functools import partial

from promoter_modelling.cli.ensemble_args import add_ensemble_arguments, ensemble_checkpoints
from promoter_modelling.errors import InputError

DESCRIPTION = """Predict how genomic variants change promoter activity, with an ensemble of trained models.

    promoter-modelling variants --run_dir results/saved_models/<run> --vcf variants.vcf.gz \\
        --fasta hg38.fa --tss_table promoters.tsv --output variant_effects.tsv

Every variant whose REF overlaps the windows of a promoter (default -300,-50 -100,150 100,350
around the TSS, in transcript orientation, as the RNA-seq tasks read promoters) is scored: the
promoter's windows are rebuilt from the ALT haplotype (windows keep their length and their place
relative to the TSS) and the prediction, the mean over the windows, is compared with the
reference one, per cell. Promoters come from a TSS table (gene, chrom, position, strand) or the
Ensembl BioMart table of the RNA-seq tasks. Writes one row per variant, promoter and cell (CSV,
TSV or Parquet by the --output name)."""

# argparse reads "-300,-50" as an option unless it looks like a negative number
WINDOW_ARGUMENT = re.compile(r"^-\d+(,-?\d+)*$|^-\d*\.\d+$")


def variants_parser() -> argparse.ArgumentParser:
    from promoter_modelling.interpret.variants import VariantOptions

    defaults = VariantOptions()
    parser = argparse.ArgumentParser(prog="promoter-modelling variants", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser._negative_number_matcher = WINDOW_ARGUMENT  # so that --windows -300,-50 ... parses
    p = parser.add_argument
    add_ensemble_arguments(parser)
    p("--vcf", required=True, help="variants (VCF, plain or gzip/bgzip)")
    p("--fasta", required=True, help="the reference genome the VCF was called against (e.g. hg38.fa)")
    promoters = parser.add_mutually_exclusive_group(required=True)
    promoters.add_argument("--tss_table", help="TSV/CSV with columns gene, chrom, position (1-based TSS), strand")
    promoters.add_argument("--ensembl_table", help="the Ensembl BioMart gene table of the RNA-seq tasks")
    p("--output", required=True, help="output table: .csv, .tsv, .csv.gz, .tsv.gz or .parquet")
    p("--windows", nargs="+", default=None, metavar="START,END",
      help="promoter windows around the TSS, all of one length (default: -300,-50 -100,150 100,350)")
    p("--max_indel", type=int, default=defaults.max_indel,
      help="longest length change of an insertion or deletion that is scored")
    p("--head", default=None, help="the head to predict with (default: the model's only regression head)")
    p("--batch_size", type=int, default=defaults.batch_size, help="windows per model call")
    p("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p("--quiet", action="store_true", help="no progress bar")
    return parser


def parse_window(text: str) -> tuple[int, int]:
    """(start, end) of a "START,END" window flag."""
    match = re.fullmatch(r"\s*(-?\d+)\s*,\s*(-?\d+)\s*", text)
    if not match:
        raise InputError(f"--windows {text!r}: expected START,END relative to the TSS, e.g. -300,-50")
    return int(match.group(1)), int(match.group(2))


def variant_options(args: argparse.Namespace):
    """VariantOptions of parsed flags.

    Parameters
    ----------
    args : flags parsed by `variants_parser`.

    Returns
    -------
    The VariantOptions they describe.
    """
    from promoter_modelling.interpret.variants import VariantOptions

    windows = tuple(parse_window(w) for w in args.windows) if args.windows else VariantOptions().windows
    return VariantOptions(windows=windows, max_indel=args.max_indel, batch_size=args.batch_size,
                          progress=not args.quiet)


def variants_main(argv: list[str] | None = None):
    """Parse the flags, check every input, score the variants with the ensemble and write the table.

    Parameters
    ----------
    argv : command-line flags (default: sys.argv).

    Returns
    -------
    The table written to --output.
    """
    from promoter_modelling import predict
    from promoter_modelling.analysis.common import resolve_device
    from promoter_modelling.design.ensemble import Ensemble
    from promoter_modelling.genome import Genome
    from promoter_modelling.interpret import variants as scoring
    from promoter_modelling.interpret.vcf import read_vcf

    args = variants_parser().parse_args(argv)
    options = variant_options(args)
    table_path = args.tss_table or args.ensembl_table
    predict.check_output(args.output, [args.vcf, args.fasta, table_path])
    checkpoints = ensemble_checkpoints(args)
    variants = read_vcf(args.vcf)
    promoters = scoring.read_promoters(table_path, "tss" if args.tss_table else "ensembl")
    genome = Genome(args.fasta)
    scoring.check_promoters(promoters, genome, table_path)
    scoring.check_variants(variants, genome, args.vcf)
    ensemble = Ensemble(checkpoints, None, head=args.head, device=resolve_device(args.device))
    if ensemble.length and ensemble.length != options.length:
        raise InputError(f"{checkpoints[0]}: the model reads {ensemble.length}-bp sequences but the windows are "
                         f"{options.length} bp; give --windows of {ensemble.length} bp")
    table = scoring.score_variants(variants, promoters, genome, partial(ensemble.predict, batch_size=args.batch_size),
                                   ensemble.cells, options)
    scoring.write_variant_table(table, args.output)
    print(f"{scoring.summary_line(variants, table)}; wrote {len(table)} rows to {args.output}")
    return table
