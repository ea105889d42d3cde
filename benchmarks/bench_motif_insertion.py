"""Time the motif insertion analysis: 10,000 promoters x 100 motifs x 10 insertions.

    python benchmarks/bench_motif_insertion.py                 # tiny PureCNN (15.5k parameters), really timed
    python benchmarks/bench_motif_insertion.py --model_name MTLucifer --model_size small --project

The default is the acceptance check: the whole job with a small convolutional model, timed end
to end. Transformer models over 251 tokens cost far more per promoter; `--project` times
`--timed_motifs` motifs and projects the whole job, and for MTLucifer the printed matmul-limit
bound shows what no implementation on the device can beat.

The analysis is `run_insertion` (baseline once per promoter, one model pass per motif, every
step vectorised) followed by `summarise` (t-tests, BH, ranks) and the per-promoter Parquet
table. Motifs are the first `--num_motifs` of the bundled JASPAR file; promoters are random
250-bp sequences; the model is randomly initialised (timing does not depend on training).

Printed figures:
- `pipeline_overhead_seconds`: everything except the model for the whole 10,000 x 100 job
  (sampling and writing the insertions, statistics, the results table), really timed;
- `model_pass_seconds`: one model pass over all promoters (with that motif's insertions), from
  timing `run_insertion` on `--timed_motifs` motifs;
- `analysis_seconds`, or (with --project) `projected_analysis_seconds` = (motifs + 1) x
  model_pass_seconds + statistics_and_table_seconds, and whether it meets the 120 s target;
- for MTLucifer, the job's analytic model FLOPs and the time they need at this device's fp32
  matmul rate (no implementation can beat it): the floor for the model part.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from common import MatmulLimit, add_device_args, report, setup_device

from promoter_modelling.analysis.insertion import (
    InsertionResult,
    insert_motif,
    motif_rng,
    run_insertion,
    summarise,
    write_per_sequence,
)
from promoter_modelling.analysis.motifs import default_meme_file, read_motifs
from promoter_modelling.lightning_module import MultiTaskModule
from promoter_modelling.tasks.fluorescence import CELLS

TARGET_SECONDS = 120.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_args(parser)
    parser.add_argument("--num_sequences", type=int, default=10_000)
    parser.add_argument("--num_motifs", type=int, default=100)
    parser.add_argument("--num_insertions", type=int, default=10)
    parser.add_argument("--num_null_shuffles", type=int, default=0,
                        help="shuffled-motif null (the analysis default is 5: 1 + 5 passes per motif); 0 times "
                             "the published work, one pass per motif")
    parser.add_argument("--model_name", default="PureCNN")
    parser.add_argument("--model_size", default="tiny", choices=("full", "small", "tiny"))
    parser.add_argument("--batch_size", type=int, default=2048)
    parser.add_argument("--timed_motifs", type=int, default=3,
                        help="motifs whose model passes are timed for the projection (with --project)")
    parser.add_argument("--project", action="store_true",
                        help="time --timed_motifs motifs and project the whole job (for slow models)")
    return parser.parse_args(argv)


def overhead_seconds(codes: np.ndarray, motifs: list, num_insertions: int, out_dir: str) -> tuple[float, float]:
    """Time the non-model steps of the whole job: (writing every motif's insertions, statistics and
    the per-promoter table)."""
    start = time.perf_counter()
    for motif in motifs:
        insert_motif(codes, motif.pwm, num_insertions, motif_rng(97, motif.name))
    inserting = time.perf_counter() - start
    rng = np.random.default_rng(0)
    n = len(codes)
    result = InsertionResult(motifs, CELLS, rng.normal(size=(1, n, 3)).astype(np.float32),
                             rng.normal(size=(len(motifs), n, 3)).astype(np.float32),
                             rng.normal(size=(len(motifs), 1, 3)))
    start = time.perf_counter()
    summarise(result)
    write_per_sequence(result, os.path.join(out_dir, "bench_per_sequence"), "parquet")
    return inserting, time.perf_counter() - start


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    device = setup_device(args)
    motifs = read_motifs(default_meme_file())[: args.num_motifs]
    codes = np.random.default_rng(0).integers(0, 4, size=(args.num_sequences, 250), dtype=np.uint8)
    torch.manual_seed(0)
    model = MultiTaskModule(heads=[{"name": "Fluorescence", "output_names": CELLS}], model_name=args.model_name,
                            model_size=args.model_size).eval()
    report("job", f"{args.num_sequences} sequences x {len(motifs)} motifs x {args.num_insertions} insertions")
    parameters = sum(p.numel() for p in model.parameters())
    report("model", f"{args.model_name} ({args.model_size}, {parameters:,} parameters), batch {args.batch_size}")
    with tempfile.TemporaryDirectory() as out_dir:
        inserting, statistics = overhead_seconds(codes, motifs, args.num_insertions, out_dir)
    report("insertion_seconds", inserting, "s")
    report("statistics_and_table_seconds", statistics, "s")
    report("pipeline_overhead_seconds", inserting + statistics, "s")
    with torch.inference_mode():
        if not args.project:
            start = time.perf_counter()
            result = run_insertion([model], codes, motifs, "Fluorescence", args.num_insertions,
                                   batch_size=args.batch_size, device=device,
                                   num_null_shuffles=args.num_null_shuffles)
            summarise(result)
            with tempfile.TemporaryDirectory() as out_dir:
                write_per_sequence(result, os.path.join(out_dir, "per_sequence"), "parquet")
            seconds = time.perf_counter() - start
            report("analysis_seconds", seconds, "s")
        else:
            timed = motifs[: max(1, args.timed_motifs)]
            start = time.perf_counter()
            run_insertion([model], codes, timed, "Fluorescence", args.num_insertions,
                          batch_size=args.batch_size, device=device, num_null_shuffles=0)
            measured = time.perf_counter() - start  # baseline pass + one pass (and insertion) per motif
            per_pass = measured / (len(timed) + 1)
            report("timed_motifs", len(timed))
            report("model_pass_seconds", per_pass, "s")
            report("model_sequences_per_second", args.num_sequences / per_pass, "seq/s")
            seconds = per_pass * (len(motifs) + 1) + statistics
            report("projected_analysis_seconds", seconds, "s")
    if args.model_name == "MTLucifer":
        from promoter_modelling.performance import mtlucifer_flops

        total = mtlucifer_flops(model.backbone, codes.shape[1]) * args.num_sequences * (len(motifs) + 1)
        limit = MatmulLimit(device, 2048)()
        report("model_flops_whole_job", total / 1e12, "TFLOP")
        report("matmul_limit", limit / 1e9, "GFLOP/s")
        report("lower_bound_seconds_at_matmul_limit", total / limit, "s")
    report("target_seconds", TARGET_SECONDS, "s")
    report("meets_target", "yes" if seconds < TARGET_SECONDS else "no")
    return seconds


if __name__ == "__main__":
    main()
