"""Time building the ENCODETFChIPSeq cache from a fixture with 200k peaks.

    python benchmarks/bench_encode_build.py [--peaks 200000] [--datasets 40] [--data_dir DIR]

Writes a fixture genome (chr1-22 + X, chr1 2 Mb) and 40 gzipped narrowPeak files with peaks
anywhere in the genome, then times `ENCODETFChIPSeq.prepare()` from scratch: reading and
filtering the peaks, grouping them, extracting the 600-bp regions and making the dinucleotide-
shuffled negatives (including the one-off numba compilation of the shuffle). The acceptance
limit is 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np
from common import report, report_load

from promoter_modelling.fixtures import encode as encode_fixture
from promoter_modelling.fixtures.genome import ensure_genome
from promoter_modelling.tasks.encode import ENCODETFChIPSeq


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
                                num_random_datasets=extra, pool_size=None)
        report("fixture_write", time.perf_counter() - start, "s")
        report_load()
        task = ENCODETFChIPSeq(data_dir)
        start = time.perf_counter()
        task.prepare()
        seconds = time.perf_counter() - start
        report("peaks", args.peaks)
        report("regions", len(task.group_table()))
        report("outputs", len(task.head.output_names))
        report("encode_build", seconds, "s")
        return seconds
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
