"""Parsers of the commands that are not training or analyses: predict, import-checkpoint,
demo-data."""

from __future__ import annotations

import argparse
import json

from promoter_modelling.errors import InputError


def predict_main(argv: list[str] | None = None) -> None:
    """`promoter-modelling predict`: sequences file in, predictions file out."""
    from promoter_modelling import predict

    parser = argparse.ArgumentParser(prog="promoter-modelling predict", description=predict.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p = parser.add_argument
    p("--checkpoint", action="extend", nargs="+", default=None,
      help="checkpoint(s) of this package; several are averaged (repeat the flag or list them)")
    p("--run_dir", action="extend", nargs="+", default=None,
      help="trained run folder(s) (saved_models/<run>): their best checkpoints are used")
    p("--input", required=True, help="FASTA, or CSV/TSV with a 'sequence' column (.gz allowed)")
    p("--output", required=True,
      help="predictions file: .csv, .tsv (either optionally .gz) or .parquet; not the input file")
    p("--heads", default=None, help="comma-separated heads to predict (default: all)")
    p("--batch_size", type=int, default=256)
    p("--device", default=None, help="cpu, cuda, cuda:1, ... (default: a GPU when there is one)")
    p("--sequence_length", type=int, default=None,
      help="expected length (default: the length recorded in the checkpoint)")
    p("--pad_or_crop", action="store_true",
      help="centre-crop longer and N-pad shorter sequences instead of refusing them")
    p("--probabilities", action="store_true", help="classifier heads: probabilities, not logits")
    p("--motif_meme_file", default=None,
      help="override the MEME motifs recorded in the checkpoint (MotifBasedFCN models)")
    p("--dnabert_path", default=None, help="override the DNABERT tokenizer recorded in the checkpoint")
    p("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        raise InputError(f"--batch_size must be at least 1, got {args.batch_size}")
    # everything that can be checked without a model is checked before any model is loaded
    predict.check_output(args.output, [args.input])
    predict.check_device(args.device)
    checkpoints = list(args.checkpoint or []) + [predict.run_checkpoint(d) for d in args.run_dir or []]
    if not checkpoints:
        raise InputError("give the model with --checkpoint FILE or --run_dir saved_models/<run>")
    records = predict.read_sequences(args.input)
    heads = [h.strip() for h in args.heads.split(",") if h.strip()] if args.heads else None
    options = predict.PredictOptions(heads=heads, batch_size=args.batch_size, device=args.device,
                                     sequence_length=args.sequence_length, pad_or_crop=args.pad_or_crop,
                                     probabilities=args.probabilities, meme_file=args.motif_meme_file,
                                     dnabert_path=args.dnabert_path, progress=not args.quiet)
    frame = predict.predict_sequences(checkpoints, records, options)
    predict.write_predictions(frame, args.output)
    averaged = f", mean of {len(checkpoints)} checkpoints" if len(checkpoints) > 1 else ""
    print(f"wrote predictions for {len(frame)} sequences to {args.output}{averaged}")


def import_main(argv: list[str] | None = None) -> None:
    """`promoter-modelling import-checkpoint`: convert a published checkpoint."""
    from promoter_modelling.checkpoints import import_published_checkpoint

    parser = argparse.ArgumentParser(
        prog="promoter-modelling import-checkpoint",
        description="Convert a checkpoint written by the published code into this package's format "
                    "(usable by predict, the analyses and as a pretrained backbone).")
    p = parser.add_argument
    p("--checkpoint", required=True, help="published .ckpt file")
    p("--model_name", default="MTLucifer", help="backbone the checkpoint was trained with")
    p("--tasks", required=True,
      help="comma-separated tasks it was trained on, e.g. FluorescenceData or RNASeq,FluorescenceData")
    p("--output", required=True, help="checkpoint to write")
    p("--model_size", default="full", help="full (published), small or tiny")
    p("--backbone_kwargs", type=json.loads, default=None,
      help="JSON dict of backbone constructor arguments (e.g. num_motifs)")
    p("--data_dir", default=None, help="data root, for tasks whose outputs come from their data")
    p("--allow_unused_heads", action="store_true", help="drop checkpoint heads of other tasks")
    p("--sequence_length", type=int, default=None,
      help="training sequence length to record (default: the published one for known tasks)")
    args = parser.parse_args(argv)
    model = import_published_checkpoint(args.checkpoint, args.model_name, args.tasks, args.model_size, args.output,
                                        backbone_kwargs=args.backbone_kwargs, data_dir=args.data_dir,
                                        allow_unused_heads=args.allow_unused_heads,
                                        sequence_length=args.sequence_length)
    print(f"wrote {args.output}: {args.model_name} ({args.model_size}) with heads {', '.join(model.heads)}")


def demo_data_main(argv: list[str] | None = None) -> None:
    """`promoter-modelling demo-data`: write demo / fixture data."""
    from promoter_modelling import demo_data

    parser = argparse.ArgumentParser(prog="promoter-modelling demo-data", description=demo_data.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="root data directory to write into")
    parser.add_argument("--tasks", nargs="+", default=["FluorescenceData"],
                        help=f"tasks to generate: {', '.join(demo_data.GENERATORS)} or all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_sequences", type=int, default=None, help="FluorescenceData promoters (default 3000)")
    args = parser.parse_args(argv)
    demo_data.generate(args.data_dir, args.tasks, args.seed, num_sequences=args.num_sequences)


def compare_main(argv: list[str] | None = None) -> None:
    """`promoter-modelling compare-models`: every backbone on the same fluorescence data."""
    from promoter_modelling import comparison
    from promoter_modelling.backbones.registry import MODEL_SIZES

    parser = argparse.ArgumentParser(prog="promoter-modelling compare-models", description=comparison.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="results, config.json and generated demo data go here")
    parser.add_argument("--models", default=None, help="comma-separated backbone names (default: all)")
    parser.add_argument("--model_size", default="small", choices=MODEL_SIZES)
    parser.add_argument("--num_random_seeds", type=int, default=1, help="data splits per model")
    parser.add_argument("--max_epochs", type=int, default=None, help="epochs for every model (default: per model)")
    parser.add_argument("--data_dir", default=None, help="data directory with FluorescenceData (default: demo data)")
    parser.add_argument("--num_sequences", type=int, default=2000, help="promoters of the generated demo data")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    comparison.compare_models(args.output_dir, models, args.model_size, args.num_random_seeds, args.max_epochs,
                              args.data_dir, args.num_sequences)
