"""Time building the ENCODETFChIPSeq cache from a fixture with 200k peaks.

    python benchmarks/bench_encode_build.py [--peaks 200000] [--data_dir DIR]

Writes a fixture genome (chr1-22 + X, 2 Mb chromosomes) and 40 narrowPeak files, then times
`ENCODETFChIPSeq.prepare()`: reading and filtering the peaks, grouping, extracting the 600-bp
regions and making the dinucleotide-shuffled negatives. Prints the build time in seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from promoter_modelling.fixtures import encode as encode_fixture  # noqa: E402
from promoter_modelling.fixtures.genome import ensure_genome  # noqa: E402
from promoter_modelling.tasks.encode import ENCODETFChIPSeq  # noqa: E402


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peaks", type=int, default=200_000, help="peaks in all (default 200000)")
    parser.add_argument("--datasets", type=int, default=40, help="narrowPeak files (default 40)")
    parser.add_argument("--chrom_length", type=int, default=2_000_000, help="length of chr1 in the fixture genome")
    parser.add_argument("--data_dir", default=None, help="where to write the fixture (default: a temporary directory)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="bench_encode_")
    try:
        start = time.perf_counter()
        ensure_genome(data_dir, "hg38", args.chrom_length)
        extra = max(0, args.datasets - len(encode_fixture.DATASETS))
        encode_fixture.generate(data_dir, np.random.default_rng(0), peaks_per_dataset=args.peaks // args.datasets,
                                num_random_datasets=extra)
        print(f"fixture written in {time.perf_counter() - start:.1f} s")
        task = ENCODETFChIPSeq(data_dir)
        start = time.perf_counter()
        task.prepare()
        seconds = time.perf_counter() - start
        regions = len(task.group_table())
        print(f"{args.peaks} peaks -> {regions} regions, {len(task.head.output_names)} outputs")
        print(f"ENCODETFChIPSeq build: {seconds:.1f} s")
        return seconds
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
