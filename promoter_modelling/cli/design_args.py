"""`promoter-modelling design`: the command line of promoter design, parsed into DesignOptions."""

from __future__ import annotations

import argparse
import os

from promoter_modelling.cli.ensemble_args import add_ensemble_arguments, ensemble_checkpoints
from promoter_modelling.errors import InputError

DESCRIPTION = """Design promoters that drive expression in one cell and not in the others, with an
ensemble of trained models (e.g. the seeds of one run).

    promoter-modelling design --run_dir results/saved_models/<run>_seed_0 [--run_dir ..._seed_1 ...] \\
        --target_cell JURKAT --num_designs 100 --output_dir designs_jurkat [--conservative]

Starts from the training promoters the ensemble ranks highest (--start training, read through
--config_path) or from random sequences, optimises them (--optimizer gradient: straight-through
gradient ascent on a relaxed one-hot; evolution: greedy substitutions, any model), optionally
against conservative (COMs) fine-tuned copies of the models, keeps --gc_min/--gc_max,
--max_homopolymer and --forbidden_sites on every design, scores candidates with the ensemble and
picks a diverse set (--min_distance edits apart). Writes designs.fa, designs.tsv,
candidates.tsv, motif_enrichment.tsv, specificity.png, enriched_motifs.png and design.json."""


def design_parser() -> argparse.ArgumentParser:
    from promoter_modelling.design import coms, search, workflow
    from promoter_modelling.design.objective import SPECIFICITY_KINDS

    search_defaults, coms_defaults = search.SearchOptions(), coms.ConservativeOptions()
    parser = argparse.ArgumentParser(prog="promoter-modelling design", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p = parser.add_argument
    add_ensemble_arguments(parser)
    p("--config_path", default="./config.json", help="config naming root_data_dir (training promoters)")
    p("--target_cell", required=True, help="the cell the designs are for (an output of the model's head)")
    p("--objective", default="mean", choices=SPECIFICITY_KINDS,
      help="target minus the mean (mean) or the max (max) of the other cells, or the FluorescenceData_DE "
           "definition (de)")
    p("--num_designs", type=int, default=100)
    p("--candidates_per_design", type=int, default=2, help="candidates optimised per design chosen")
    p("--optimizer", default="gradient", choices=search.OPTIMIZERS)
    p("--start", default="training", choices=workflow.STARTS)
    p("--steps", type=int, default=search_defaults.steps, help="optimisation steps")
    p("--lr", type=float, default=search_defaults.lr, help="gradient: Adam step size on the logits")
    p("--init_scale", type=float, default=search_defaults.init_scale,
      help="gradient: starting logit of each start base")
    p("--children", type=int, default=search_defaults.children, help="evolution: mutants per design and step")
    p("--mutations", type=int, default=search_defaults.mutations, help="evolution: substitutions per mutant")
    p("--batch_size", type=int, default=search_defaults.batch_size)
    p("--conservative", action="store_true", help="optimise against COMs fine-tuned copies of the models")
    p("--coms_alpha", type=float, default=coms_defaults.alpha, help="weight of the conservatism penalty")
    p("--coms_steps", type=int, default=coms_defaults.steps, help="fine-tuning batches per model")
    p("--coms_lr", type=float, default=coms_defaults.lr)
    p("--coms_adversarial_steps", type=int, default=coms_defaults.adversarial_steps)
    p("--gc_min", type=float, default=0.0)
    p("--gc_max", type=float, default=1.0)
    p("--max_homopolymer", type=int, default=None, help="longest run of one base allowed")
    p("--forbidden_sites", default="", help="comma-separated sites absent from both strands, e.g. GAATTC,GGTACC")
    p("--min_distance", type=int, default=10, help="smallest edit distance between two chosen designs")
    p("--spread_penalty", type=float, default=1.0,
      help="objective and ranking use mean - this x ensemble standard deviation")
    p("--head", default=None, help="head to design with when several predict the target cell")
    p("--meme_file", default=None, help="motifs scanned in the designs (default: bundled JASPAR)")
    p("--seed", type=int, default=0)
    p("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p("--output_dir", required=True)
    p("--overwrite", action="store_true", help="replace designs of other options in --output_dir")
    p("--quiet", action="store_true", help="no progress bars")
    return parser


def design_main(argv: list[str] | None = None):
    """Parse the flags, check the inputs and run `design_promoters`."""
    from promoter_modelling.config import load_paths
    from promoter_modelling.design import coms, search, workflow
    from promoter_modelling.design.constraints import SequenceConstraints

    args = design_parser().parse_args(argv)
    options = workflow.DesignOptions(
        target_cell=args.target_cell, objective=args.objective, num_designs=args.num_designs,
        candidates_per_design=args.candidates_per_design, optimizer=args.optimizer, start=args.start,
        conservative=args.conservative,
        search=search.SearchOptions(steps=args.steps, lr=args.lr, init_scale=args.init_scale, children=args.children,
                                    mutations=args.mutations, batch_size=args.batch_size),
        coms=coms.ConservativeOptions(alpha=args.coms_alpha, steps=args.coms_steps, lr=args.coms_lr,
                                      adversarial_steps=args.coms_adversarial_steps, seed=args.seed),
        constraints=SequenceConstraints(gc_min=args.gc_min, gc_max=args.gc_max, max_homopolymer=args.max_homopolymer,
                                        forbidden_sites=tuple(s for s in args.forbidden_sites.split(",") if s.strip())),
        spread_penalty=args.spread_penalty, min_distance=args.min_distance, head=args.head, seed=args.seed,
        device=args.device, meme_file=args.meme_file, progress=not args.quiet)
    if args.meme_file and not os.path.isfile(args.meme_file):
        raise InputError(f"{args.meme_file}: MEME motif file not found (--meme_file)")
    checkpoints = ensemble_checkpoints(args)
    needs_data = options.start == "training" or options.conservative
    paths = load_paths(args.config_path) if needs_data or os.path.exists(args.config_path) else None
    designs = workflow.design_promoters(checkpoints, options, args.output_dir, paths, overwrite=args.overwrite)
    print(f"wrote {len(designs)} designs for {args.target_cell} to {args.output_dir}")
    return designs
