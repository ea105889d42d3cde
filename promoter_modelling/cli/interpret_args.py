"""`promoter-modelling attribute` and `promoter-modelling modisco`: command lines parsed into
typed options."""

from __future__ import annotations

import argparse
import os

from promoter_modelling.cli.ensemble_args import add_ensemble_arguments, ensemble_checkpoints
from promoter_modelling.errors import InputError

ATTRIBUTE_DESCRIPTION = """Per-base contribution scores of trained models (a seed ensemble is averaged).

    promoter-modelling attribute --run_dir results/saved_models/<run>_seed_0 [--run_dir ..._seed_1 ...] \\
        --input promoters.fa --output_dir attributions [--method ism]
    promoter-modelling attribute --run_dir ... --config_path config.json --task FluorescenceData \\
        --split test --output_dir attributions

DeepLIFT/SHAP (tangermeme deep_lift_shap) against --n_shuffles dinucleotide-shuffled references,
or in-silico saturation mutagenesis (every single-base substitution predicted). Writes
attributions.npz (sequences, ids, outputs, per-base values (N, outputs, L, 4), predictions and the
DeepLIFT additivity error), logos.png for --plot (ids) or the --num_plots top-predicted
sequences, and attribute.json. Models must read one-hot sequences."""

MODISCO_DESCRIPTION = """TF-MoDISco (modisco-lite) on attributions written by `promoter-modelling attribute`,
with every pattern matched to a motif database (memelite tomtom): the bundled JASPAR file plus
any --meme_file.

    promoter-modelling modisco --attributions attributions/attributions.npz --output_dir modisco \\
        [--output JURKAT] [--meme_file motifs.meme] [--no_jaspar]

Writes patterns.tsv (one row per pattern and best matches), modisco_results.h5, report.md and
report.html (logos of every pattern and its matches) and logos/*.png."""


def attribute_parser() -> argparse.ArgumentParser:
    from promoter_modelling.interpret.attribution import METHODS, AttributionOptions
    from promoter_modelling.interpret.sources import SPLITS

    defaults = AttributionOptions()
    parser = argparse.ArgumentParser(prog="promoter-modelling attribute", description=ATTRIBUTE_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p = parser.add_argument
    add_ensemble_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="FASTA, or CSV/TSV with a 'sequence' column (.gz allowed)")
    source.add_argument("--task", help="a fluorescence task whose --split is explained (needs --config_path)")
    p("--split", default="test", choices=SPLITS, help="split of --task (as the models were trained)")
    p("--config_path", default="./config.json", help="config naming root_data_dir (with --task)")
    p("--pad_or_crop", action="store_true", help="--input: centre-crop longer and N-pad shorter sequences")
    p("--num_sequences", type=int, default=None, help="explain only the first this many sequences")
    p("--method", default=defaults.method, choices=METHODS)
    p("--outputs", default=None, help="comma-separated outputs of the head to explain (default: all)")
    p("--head", default=None, help="head to explain when the model has several regression heads")
    p("--n_shuffles", type=int, default=defaults.n_shuffles, help="DeepLIFT: references per sequence")
    p("--batch_size", type=int, default=defaults.batch_size,
      help="sequence-reference pairs (DeepLIFT, default 16) or mutants (ISM, default 256) per forward pass")
    p("--chunk_size", type=int, default=defaults.chunk_size, help="sequences held in memory at once")
    p("--seed", type=int, default=defaults.seed, help="seed of the shuffled references")
    p("--plot", default=None, help="comma-separated ids whose logos are plotted")
    p("--num_plots", type=int, default=5, help="without --plot: logos of this many top-predicted sequences")
    p("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p("--output_dir", required=True)
    p("--overwrite", action="store_true", help="replace attributions of other options in --output_dir")
    p("--quiet", action="store_true", help="no progress bars")
    return parser


def attribute_main(argv: list[str] | None = None):
    """Parse the flags, read the sequences and write attributions (returns them)."""
    from promoter_modelling.analysis.common import resolve_device
    from promoter_modelling.interpret import sources
    from promoter_modelling.interpret.attribution import AttributionOptions
    from promoter_modelling.interpret.workflow import attribute_to_folder

    args = attribute_parser().parse_args(argv)
    outputs = tuple(o.strip() for o in args.outputs.split(",") if o.strip()) if args.outputs else None
    options = AttributionOptions(method=args.method, outputs=outputs, n_shuffles=args.n_shuffles,
                                 batch_size=args.batch_size, seed=args.seed, chunk_size=args.chunk_size,
                                 progress=not args.quiet)
    if args.num_plots < 0:
        raise InputError(f"--num_plots must be at least 0, got {args.num_plots}")
    plot_ids = [i.strip() for i in args.plot.split(",") if i.strip()] if args.plot else None
    checkpoints = ensemble_checkpoints(args)
    device = resolve_device(args.device)

    if args.num_sequences is not None and args.num_sequences < 1:
        raise InputError(f"--num_sequences must be at least 1, got {args.num_sequences}")

    def read(ensemble) -> sources.Sequences:
        if args.input:
            found = sources.from_file(args.input, ensemble.length, args.pad_or_crop)
        else:
            from promoter_modelling.config import load_paths

            found = sources.from_task(load_paths(args.config_path), args.task, args.split, ensemble.models)
        return found.first(args.num_sequences)

    source = ({"input": os.path.abspath(args.input), "pad_or_crop": args.pad_or_crop} if args.input else
              {"task": args.task, "split": args.split, "config": os.path.abspath(args.config_path)})
    source["num_sequences"] = args.num_sequences
    attributions = attribute_to_folder(checkpoints, read, options, args.output_dir, head=args.head, device=device,
                                       plot_ids=plot_ids, num_plots=args.num_plots, overwrite=args.overwrite,
                                       source=source)
    print(f"wrote {attributions.method} attributions of {len(attributions.ids)} sequences for "
          f"{', '.join(attributions.outputs)} to {os.path.join(args.output_dir, 'attributions.npz')}")
    return attributions


def modisco_parser() -> argparse.ArgumentParser:
    from promoter_modelling.interpret.modisco import ModiscoOptions

    defaults = ModiscoOptions()
    parser = argparse.ArgumentParser(prog="promoter-modelling modisco", description=MODISCO_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p = parser.add_argument
    p("--attributions", required=True, help="attributions.npz of promoter-modelling attribute")
    p("--output", action="extend", nargs="+", default=None,
      help="output(s) of the head whose attributions are clustered (default: each in turn)")
    p("--meme_file", action="extend", nargs="+", default=None,
      help="MEME file(s) of motifs added to the database the patterns are matched to")
    p("--no_jaspar", action="store_true", help="leave the bundled JASPAR file out of the database")
    p("--max_seqlets", type=int, default=defaults.max_seqlets, help="most seqlets per metacluster")
    p("--window", type=int, default=defaults.window, help="central bases searched for seqlets (default: all)")
    p("--sliding_window", type=int, default=defaults.sliding_window, help="seqlet core width")
    p("--flank", type=int, default=defaults.flank, help="bases added on each side of a seqlet core")
    p("--trim", type=int, default=defaults.trim, help="pattern width after trimming")
    p("--max_matches", type=int, default=defaults.max_matches, help="database matches listed per pattern")
    p("--leiden_runs", type=int, default=defaults.leiden_runs, help="Leiden clusterings per clustering step")
    p("--seed", type=int, default=defaults.seed)
    p("--output_dir", required=True)
    p("--overwrite", action="store_true", help="replace an earlier report in --output_dir")
    return parser


def modisco_main(argv: list[str] | None = None):
    """Parse the flags and run TF-MoDISco with motif matching (returns the pattern table)."""
    from promoter_modelling.interpret.modisco import ModiscoOptions, run_modisco
    from promoter_modelling.interpret.store import load_attributions

    args = modisco_parser().parse_args(argv)
    for path in args.meme_file or []:
        if not os.path.isfile(path):
            raise InputError(f"{path}: MEME motif file not found (--meme_file)")
    options = ModiscoOptions(max_seqlets=args.max_seqlets, window=args.window, sliding_window=args.sliding_window,
                             flank=args.flank, trim=args.trim, max_matches=args.max_matches, seed=args.seed,
                             meme_files=tuple(args.meme_file or ()), jaspar=not args.no_jaspar,
                             leiden_runs=args.leiden_runs)
    attributions = load_attributions(args.attributions)
    table = run_modisco(attributions, options, args.output_dir, outputs=args.output, overwrite=args.overwrite,
                        source=args.attributions)
    print(f"wrote {len(table)} TF-MoDISco patterns to {args.output_dir} (report.md, report.html, patterns.tsv)")
    return table
