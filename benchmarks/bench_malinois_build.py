"""Malinois_MPRA at the published scale: cache build time and peak memory, and whether a
training epoch's data loading keeps up with the model.

    python benchmarks/bench_malinois_build.py                    # 800,000 elements, five cells
    python benchmarks/bench_malinois_build.py --elements 100000 --skip_model

Writes a synthetic raw set as the ENCODE portal walk leaves it in `<data>/Malinois_MPRA/`
(generated with whole-array numpy operations): `--elements` 200-bp elements (about 2% of
other lengths) with IDs `chrom:pos:ref:alt:R:wC` on chromosomes 1-22 and X, split over two
reference FASTAs (libraries); three experiments per cell in five cells, each measuring about
90% of its library (MPRAmodel TSVs with their usual columns, a few NaN / inf values); and
`file_info.csv` with the published 43 count files dealt over the 15 experiments.

Then it builds the full-mode cache (`Malinois_MPRA`) and the subsampled one
(`Malinois_MPRA_subsampled_15000`), each from scratch in a fresh child process, so that the
peak resident set measured (the child's own VmHWM, imports included; its `RUSAGE_SELF`
ru_maxrss is shown as a check) is the build's alone; the child's resident set right after its
imports is reported too. The acceptance limits are 120 s and 4 GiB on a 2-core machine.

Finally it compares data loading with the model: the mean time per batch of the training
loader (batch 96, no worker processes; fetching the batch, then expanding its codes to one-hot
as the model's step does, each reported; the best of three rounds of --batches batches, the
first round also shown) against a training step of the published-size MTLucifer with a 5-output linear head (forward,
masked MSE, backward and an AdamW step, batch 96). `loader_share` = loader / model: below 1
means loading keeps up even in the training process itself, without workers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import tempfile
import time

import numpy as np
import pandas as pd
from common import add_device_args, best_time, report, report_load, rss_bytes, setup_device

from promoter_modelling.encode_portal import MALINOIS_COUNT_FILES
from promoter_modelling.fixtures import malinois as fixture
from promoter_modelling.tasks.malinois import CELLS, FILE_INFO

CHROMOSOMES = np.array([str(i) for i in range(1, 23)] + ["X"], dtype=object)
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
MEASURED_FRACTION = 0.9
BROKEN_FRACTION = 0.002  # NaN / inf log2FoldChange values
ODD_FRACTION = 0.02  # elements that are not 200 bp
SUBSAMPLED = "Malinois_MPRA_subsampled_15000"


# --- synthetic raw files -------------------------------------------------------------------
def element_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique IDs `chrom:pos:ref:alt:R:wC` (positions distinct by construction)."""
    chroms = rng.choice(CHROMOSOMES, size=n)
    positions = 1_000_000 + 200 * rng.permutation(n) + rng.integers(0, 200, size=n)
    ref = BASES[rng.integers(0, 4, size=n)].view("S1").astype(str).astype(object)
    alt = BASES[rng.integers(0, 4, size=n)].view("S1").astype(str).astype(object)
    return (chroms + ":" + positions.astype(str).astype(object) + ":" + ref + ":" + alt + ":R:wC").astype(object)


def element_sequences(rng: np.random.Generator, n: int, length: int = 200) -> list[bytes]:
    """Random sequences; about 2% shortened to 180 bp or lengthened to 230 bp."""
    codes = rng.integers(0, 4, size=(n, length), dtype=np.uint8)
    sequences = BASES[codes].view(f"S{length}").ravel().tolist()
    for i in np.flatnonzero(rng.random(n) < ODD_FRACTION):
        sequences[i] = sequences[i][:180] if i % 2 else sequences[i] + sequences[i][:30]
    return sequences


def write_fasta(path: str, ids: np.ndarray, sequences: list[bytes]) -> None:
    parts: list[bytes] = [b""] * (2 * len(ids))
    parts[0::2] = [f">{i}".encode() for i in ids]
    parts[1::2] = sequences
    with open(path, "wb") as handle:
        handle.write(b"\n".join(parts) + b"\n")


def write_tsv(table: pd.DataFrame, path: str) -> None:
    """A tab-separated table with a header, as MPRAmodel (R) writes it (NA for missing)."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:
        table.to_csv(path, sep="\t", index=False, na_rep="NA")
        return
    options = pa_csv.WriteOptions(delimiter="\t", quoting_style="none", include_header=False)
    with open(path, "wb") as handle:
        handle.write(("\t".join(table.columns) + "\n").encode())
        pa_csv.write_csv(pa.Table.from_pandas(table, preserve_index=False), handle, write_options=options)


def quantification(rng: np.random.Generator, ids: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """An MPRAmodel-style table (the fixture's columns): the elements in random order."""
    n = len(ids)
    order = rng.permutation(n)
    lfc = values[order] + rng.normal(0, 0.35, size=n)
    broken = np.flatnonzero(rng.random(n) < BROKEN_FRACTION)
    lfc[broken] = rng.choice([np.nan, np.inf, -np.inf], size=broken.size)
    lfc_text = np.round(lfc, 6).astype(str).astype(object)
    lfc_text[np.isnan(lfc)] = "NA"
    return pd.DataFrame({"ID": ids[order], "ctrl_mean": rng.uniform(50, 500, n).round(2),
                         "exp_mean": rng.uniform(50, 500, n).round(2), "log2FoldChange": lfc_text,
                         "lfcSE": rng.uniform(0.05, 0.5, n).round(4), "stat": rng.normal(0, 3, n).round(5),
                         "pvalue": rng.uniform(0, 1, n).round(6), "padj": rng.uniform(0, 1, n).round(6)})


def write_raw_set(data_dir: str, n: int, seed: int = 0) -> dict[str, int]:
    """The synthetic Malinois_MPRA raw directory; returns counts of what was written."""
    rng = np.random.default_rng(seed)
    directory = os.path.join(data_dir, "Malinois_MPRA")
    os.makedirs(directory, exist_ok=True)
    ids = element_ids(rng, n)
    sequences = element_sequences(rng, n)
    activity = rng.normal(0, 1, size=(n, len(CELLS)))
    library_of = np.where(rng.random(n) < 0.6, 0, 1)
    for index, library in enumerate(fixture.LIBRARIES):
        rows = np.flatnonzero(library_of == index)
        write_fasta(os.path.join(directory, f"{library}.fasta"), ids[rows], [sequences[i] for i in rows])
    del sequences
    info = fixture.file_info(list(MALINOIS_COUNT_FILES))
    measurements = 0
    for cell, experiment, library in fixture.experiments():
        quant = info.loc[info["dataset_id"] == f"/experiments/{experiment}/", "element_quantifications_id"].iloc[0]
        rows = np.flatnonzero((library_of == fixture.LIBRARIES.index(library)) & (rng.random(n) < MEASURED_FRACTION))
        write_tsv(quantification(rng, ids[rows], activity[rows, CELLS.index(cell)]),
                  os.path.join(directory, f"{quant}.tsv"))
        measurements += rows.size
    info.to_csv(os.path.join(directory, FILE_INFO), index=False)
    return {"count_files": len(info), "experiments": info["dataset_id"].nunique(), "measurements": measurements}


# --- the build, in a child process -----------------------------------------------------------
def _build_child(name: str, data_dir: str, queue) -> None:
    """Runs in a fresh process: build one cache from scratch; report time, rows and peak RSS."""
    from promoter_modelling.tasks.registry import build_task

    baseline = rss_bytes("VmRSS")
    task = build_task(name, data_dir)
    start = time.perf_counter()
    try:
        task.prepare()
    except Exception as exc:  # the parent reports it instead of waiting forever
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise
    seconds = time.perf_counter() - start
    rows = {split: len(getattr(task, f"{split}_dataset")) for split in ("train", "val", "test")}
    # VmHWM is this process's own peak; ru_maxrss (KiB on Linux) is shown alongside as a check
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"seconds": seconds, "rows": rows, "peak": rss_bytes("VmHWM") or peak_kib * 1024,
               "ru_maxrss": peak_kib * 1024, "baseline": baseline})


def build_in_child(name: str, data_dir: str) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_build_child, args=(name, data_dir, queue))
    process.start()
    result = queue.get()
    process.join()
    if "error" in result or process.exitcode:
        raise RuntimeError(f"building {name} failed: {result.get('error', f'exit code {process.exitcode}')}")
    return result


def report_build(prefix: str, result: dict) -> None:
    rows = result["rows"]
    report(f"{prefix}_build_s", result["seconds"], "s")
    report(f"{prefix}_build_peak_rss_gib", result["peak"] / 2**30, "GiB")
    report(f"{prefix}_build_ru_maxrss_gib", result["ru_maxrss"] / 2**30, "GiB")
    if result["baseline"] is not None:
        report(f"{prefix}_child_rss_after_imports_gib", result["baseline"] / 2**30, "GiB")
    report(f"{prefix}_rows", sum(rows.values()))
    for split, count in rows.items():
        report(f"{prefix}_rows_{split}", count)
    report_load()


# --- loading vs the model ----------------------------------------------------------------------
def loader_ms_per_batch(data_dir: str, batches: int, rounds: int = 3) -> tuple[list[tuple[float, float]], int]:
    """(fetch, one-hot) mean ms per training batch (batch 96, no workers) in each of `rounds`
    rounds of `batches` batches: fetch = the DataLoader's batch (codes, targets, mask), one-hot
    = expanding its codes with `codes_to_one_hot` on the CPU, as the model's step does (the
    first round touches the memory-mapped cache cold). Also the training batches per epoch."""
    from promoter_modelling.sequence import codes_to_one_hot
    from promoter_modelling.tasks.registry import build_task

    task = build_task("Malinois_MPRA", data_dir)
    task.prepare()
    loader = task.train_dataloader()
    iterator = iter(loader)
    codes_to_one_hot(next(iterator)["x"])  # warm-up: the epoch's permutation, the allocator
    means = []
    for _ in range(rounds):
        fetch = expand = 0.0
        for _ in range(batches):
            start = time.perf_counter()
            batch = next(iterator)
            middle = time.perf_counter()
            x = codes_to_one_hot(batch["x"])
            expand += time.perf_counter() - middle
            fetch += middle - start
            assert x.shape[1:] == (200, 4) and batch["y"].shape[1] == len(CELLS)
        means.append((1000 * fetch / batches, 1000 * expand / batches))
    return means, len(loader)


def model_ms_per_step(device, batch: int, steps: int) -> float:
    """Best ms of a published-size MTLucifer training step (after one warm-up step)."""
    import torch

    from promoter_modelling.backbones.registry import build_backbone
    from promoter_modelling.sequence import codes_to_one_hot

    torch.manual_seed(0)
    model = build_backbone("MTLucifer", "full").to(device).train()
    head = torch.nn.Linear(model.embed_dims, len(CELLS)).to(device)
    optimizer = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=1e-5)
    codes = torch.randint(0, 4, (batch, 200), dtype=torch.uint8).to(device)
    targets = torch.randn(batch, len(CELLS)).to(device)
    mask = torch.rand(batch, len(CELLS), device=device) < 0.9

    def step() -> None:
        prediction = head(model(codes_to_one_hot(codes)))
        loss = ((prediction - targets)[mask] ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return 1000 * best_time(step, device, repeats=steps, warmup=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_args(parser)
    parser.add_argument("--elements", type=int, default=800_000, help="elements in all (default 800000)")
    parser.add_argument("--data_dir", default=None, help="where to write the raw set (default: a temporary directory)")
    parser.add_argument("--skip_model", action="store_true", help="time the loader only, not the model step")
    parser.add_argument("--skip_subsampled", action="store_true", help="build the full-mode cache only")
    parser.add_argument("--batches", type=int, default=200, help="training batches per timed round (default 200)")
    parser.add_argument("--model_steps", type=int, default=2, help="timed model steps after one warm-up (best kept)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="bench_malinois_")
    try:
        report_load()
        start = time.perf_counter()
        written = write_raw_set(data_dir, args.elements)
        report("raw_write", time.perf_counter() - start, "s")
        report("elements", args.elements)
        for key, value in written.items():
            report(key, value)
        raw = os.path.join(data_dir, "Malinois_MPRA")
        report("raw_bytes", sum(os.path.getsize(os.path.join(raw, f)) for f in os.listdir(raw)) / 2**20, "MiB")
        for name in ("cache_full", f"cache_subsampled_{SUBSAMPLED.rsplit('_', 1)[1]}"):
            shutil.rmtree(os.path.join(raw, name), ignore_errors=True)  # from scratch, also with --data_dir
        report_load()
        report_build("malinois", build_in_child("Malinois_MPRA", data_dir))
        if not args.skip_subsampled:
            report_build("malinois_subsampled_15000", build_in_child(SUBSAMPLED, data_dir))
        device = setup_device(args)
        rounds, batches_per_epoch = loader_ms_per_batch(data_dir, args.batches)
        # best round: a burst of load from other processes does not count
        fetch_ms, onehot_ms = min(rounds, key=sum)
        loader_ms = fetch_ms + onehot_ms
        report("loader_ms_per_batch_first_round", sum(rounds[0]), "ms")
        report("loader_fetch_ms_per_batch", fetch_ms, "ms")
        report("loader_onehot_ms_per_batch", onehot_ms, "ms")
        report("loader_ms_per_batch", loader_ms, "ms")
        report("train_batches_per_epoch", batches_per_epoch)
        report("loader_epoch_s", loader_ms * batches_per_epoch / 1000, "s")
        report_load()
        if args.skip_model:
            return
        model_ms = model_ms_per_step(device, 96, args.model_steps)
        report("model_step_ms_per_batch", model_ms, "ms")
        report("model_epoch_s", model_ms * batches_per_epoch / 1000, "s")
        report("loader_share", loader_ms / model_ms)
        report_load()
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
