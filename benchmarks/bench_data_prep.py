"""FluorescenceData preparation: raw files -> caches, cache size, and loader throughput.

    python benchmarks/bench_data_prep.py                     # 100,000 synthetic promoters
    python benchmarks/bench_data_prep.py --rows 1000000      # the 1M-row figure
    python benchmarks/bench_data_prep.py --rows 1000000 --breakdown --workers 2

Writes synthetic `Raw_Promoter_Counts.csv` and `final_list_of_all_promoter_sequences_fixed.tsv`
with --rows rows (generated with whole-array numpy operations), then times
`FluorescenceData.prepare()` building every cache from them (merged table, uint8 sequence
codes per split), and compares the sequence caches with the float32 (L, 4) one-hot arrays they
replace. Finally it times one pass over the training loader, codes expanded to one-hot on the
device, as a training loop would consume them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import pandas as pd
from common import add_device_args, report, report_load, setup_device, synchronize

from promoter_modelling import sequence as seqlib
from promoter_modelling.tasks import fluorescence as fluo

CLASS_NAMES = np.array(["ClassI", "ClassII", "ClassIII"], dtype=object)
CELL_NAMES = np.array(["JURKAT", "K562", "THP1"], dtype=object)


def write_table(table: pd.DataFrame, path: str, sep: str) -> None:
    """Write a delimited text table; with pyarrow (multi-threaded C++) when it is installed."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:
        table.to_csv(path, sep=sep, index=False)
        return
    # Values never contain the delimiter, quotes or newlines, so nothing needs quoting.
    options = pa_csv.WriteOptions(delimiter=sep, quoting_style="none", include_header=False)
    with open(path, "wb") as handle:
        handle.write((sep.join(map(str, table.columns)) + "\n").encode())
        pa_csv.write_csv(pa.Table.from_pandas(table, preserve_index=False), handle, write_options=options)


def write_raw_files(directory: str, rows: int, length: int = 250, seed: int = 0) -> dict[str, str]:
    """Write both FluorescenceData raw files with `rows` random promoters; returns their paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    codes = rng.integers(0, 4, size=(rows, length), dtype=np.uint8)
    sequences = np.array(seqlib.decode(codes), dtype=object)

    counts = {"sequence": sequences}
    low = rng.random(rows) < 0.02  # a few promoters fail the read filter
    for cell in fluo.CELLS:
        for replicate in fluo.REPLICATES:
            p4, p7 = fluo.count_columns(cell, replicate)
            depth = rng.lognormal(np.log(400), 0.3, size=rows)
            share = 1.0 / (1.0 + 2.0 ** (-rng.normal(0, 1, size=rows)))
            counts[p4] = np.where(low, 1, rng.poisson(depth * share))
            counts[p7] = np.where(low, 1, rng.poisson(depth * (1 - share)))
    table = pd.DataFrame(counts)
    sums = []
    for cell in fluo.CELLS:
        for replicate in fluo.REPLICATES:
            p4, p7 = fluo.count_columns(cell, replicate)
            table[f"{cell[0]}{replicate}_sum"] = table[p4] + table[p7]
            sums.append(f"{cell[0]}{replicate}_sum")
    table["cum_sum"] = table[sums].sum(axis=1)
    counts_path = os.path.join(directory, fluo.COUNTS_FILE)
    write_table(table, counts_path, ",")

    kind = rng.choice(3, size=rows, p=[0.4, 0.35, 0.25])
    provenance = np.empty(rows, dtype=object)
    is3, is2, is1 = kind == 2, kind == 1, kind == 0
    provenance[is3] = "source=synthetic ~ type=" + rng.choice(np.array(["shuffled", "random"], dtype=object), is3.sum())
    provenance[is2] = ("cell=" + rng.choice(CELL_NAMES, is2.sum()) + " ~ type=designed ~ total_num_motifs="
                       + rng.integers(1, 3, is2.sum()).astype(str).astype(object))
    n1 = int(is1.sum())
    up = rng.random(n1) < 0.5
    fold = np.round(rng.uniform(0.5, 4.0, n1) * np.where(up, 1, -1), 3).astype(str).astype(object)
    cell = rng.choice(np.array(["JURKAT", "THP1", "NK92", "none"], dtype=object), n1)
    described = np.where(cell == "none", "housekeeping;curated",
                         cell + np.where(up, " upregulated", " downregulated").astype(object) + " gene;curated")
    provenance[is1] = ("gene=G" + rng.integers(0, 10**6, n1).astype(str).astype(object) + " ~ id=X ~ log2FoldChange="
                       + fold + " ~ padj=0.01 ~ description=" + described)
    sequences_path = os.path.join(directory, fluo.SEQUENCES_FILE)
    write_table(pd.DataFrame({"sequence": sequences, "class": CLASS_NAMES[kind], "final_provenance": provenance}),
                sequences_path, "\t")
    return {"counts": counts_path, "sequences": sequences_path}


def directory_bytes(directory: str, suffix: str = "") -> int:
    return sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory) if f.endswith(suffix))


def breakdown(raw_dir: str, cache_dir: str) -> None:
    """Time the stages of the cache build separately (each re-run on the same files)."""
    counts_path = os.path.join(raw_dir, fluo.COUNTS_FILE)
    sequences_path = os.path.join(raw_dir, fluo.SEQUENCES_FILE)
    stages = {}
    start = time.perf_counter()
    fluo.read_counts(counts_path)
    stages["read_counts"] = time.perf_counter() - start
    start = time.perf_counter()
    table = fluo.read_sequence_table(sequences_path)
    stages["read_sequence_table"] = time.perf_counter() - start
    start = time.perf_counter()
    fluo.cell_specific_class(table["class"], table["final_provenance"], sequences_path)
    stages["cell_specific_class"] = time.perf_counter() - start
    start = time.perf_counter()
    merged = fluo.build_merged(counts_path, sequences_path)
    stages["build_merged_total"] = time.perf_counter() - start
    start = time.perf_counter()
    codes = seqlib.encode(merged["sequence"].tolist())
    stages["encode_uint8"] = time.perf_counter() - start
    start = time.perf_counter()
    merged.to_csv(os.path.join(cache_dir, "breakdown_merged.tsv"), sep="\t", index=False)
    stages["write_merged_tsv"] = time.perf_counter() - start
    start = time.perf_counter()
    np.save(os.path.join(cache_dir, "breakdown_codes.npy"), codes)
    stages["write_codes_npy"] = time.perf_counter() - start
    for name, seconds in stages.items():
        report(f"data_prep.stage.{name}.time", seconds, "s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_args(parser)
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic promoters in the raw files")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the loader pass")
    parser.add_argument("--batch-size", type=int, default=96)
    parser.add_argument("--workdir", default=None, help="where to write the files (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--breakdown", action="store_true", help="also time the build stages one by one")
    args = parser.parse_args(argv)
    device = setup_device(args)

    root = args.workdir or tempfile.mkdtemp(prefix="bench_data_prep_")
    try:
        raw_dir = os.path.join(root, "FluorescenceData")
        start = time.perf_counter()
        paths = write_raw_files(raw_dir, args.rows)
        report("data_prep.raw_rows", args.rows)
        report("data_prep.write_raw_files.time", time.perf_counter() - start, "s")
        report("data_prep.raw_files_bytes", sum(os.path.getsize(p) for p in paths.values()) / 2**20, "MiB")

        data = fluo.FluorescenceData(root, batch_size=args.batch_size, num_workers=args.workers)
        start = time.perf_counter()
        data.prepare()
        seconds = time.perf_counter() - start
        report("data_prep.build_caches.time", seconds, "s")
        report("data_prep.build_caches.throughput", args.rows / seconds, "rows/s")

        n = len(data.full_dataset)
        length = data.full_dataset.x.shape[1]
        report("data_prep.cached_sequences", n)
        array_bytes = data.full_dataset.x.nbytes  # what a loader holds: (N, L) uint8, memory-mapped
        onehot_bytes = n * length * 4 * np.dtype(np.float32).itemsize
        report("data_prep.sequence_cache_array_bytes", array_bytes / 2**20, "MiB")
        report("data_prep.float32_onehot_array_bytes", onehot_bytes / 2**20, "MiB")
        report("data_prep.sequence_cache_over_float32_onehot", array_bytes / onehot_bytes, "(limit 1/16 = 0.0625)")
        per_100k = 100_000 / n
        report("data_prep.sequence_cache_bytes_per_100k_sequences", array_bytes * per_100k / 2**20, "MiB")
        report("data_prep.float32_onehot_bytes_per_100k_sequences", onehot_bytes * per_100k / 2**20, "MiB")
        seq_files = directory_bytes(data.cache_dir, "_seqs.npy")
        report("data_prep.sequence_cache_files_bytes", seq_files / 2**20, "MiB (full + train/val/test .npy files)")
        report("data_prep.sequence_cache_files_over_float32_onehot", seq_files / (2 * onehot_bytes),
               "(the same arrays as float32 one-hot)")
        report("data_prep.merged_table_bytes", os.path.getsize(data.merged_path) / 2**20, "MiB")

        loader = data.train_dataloader()
        rows = 0
        start = time.perf_counter()
        for batch in loader:
            x = seqlib.codes_to_one_hot(batch["x"].to(device, non_blocking=True))
            rows += x.shape[0]
        synchronize(device)
        seconds = time.perf_counter() - start
        report("data_prep.train_loader.workers", args.workers)
        report("data_prep.train_loader.throughput", rows / seconds, "sequences/s")
        if args.breakdown:
            breakdown(raw_dir, data.cache_dir)
        report_load()
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
