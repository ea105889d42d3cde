"""Inference throughput of the published-size Enformer and Malinois backbones, their efficiency
against the matmul limit, and Enformer's peak memory on a large batch.

    python benchmarks/bench_enformer_malinois.py              # CPU: about 1.5 minutes on 2 idle cores
    python benchmarks/bench_enformer_malinois.py --no-memory  # throughput only

Enformer is timed as `EnformerRandomInit` at full size (dim 1536, depth 11: random weights, the
same trunk and the same compute as the pretrained `Enformer`, without the hub download) at 200 bp
(Malinois MPRA) and 1,177 bp (the Fluorescence construct); Malinois (n_outputs 5) at 200 bp,
zero-padded to its 600-bp input as published. Each workload runs in eval mode under
torch.inference_mode, timed in alternating rounds right after timing a large fp32 matmul over a
window as long as the model timing (common.interleaved_best):

    achieved = FLOPs of one batch (torch.utils.flop_counter.FlopCounterMode) / best batch time
    efficiency = achieved / the highest matmul FLOP/s seen

FlopCounterMode counts the convolutions and matrix products (2 per multiply-add); elementwise
work (BatchNorm, GELU, softmax, attention pooling) is the overhead the efficiency figure shows.

Memory: a batch of --memory-batch sequences of --memory-length bp goes through the full-size
Enformer under torch.no_grad in a fresh process, once with the default slicing
(`Enformer.cpu_inference_slice_bytes`) and once in one pass; each reports the peak resident set
growth over the resident set before the call (VmHWM reset through /proc/self/clear_refs) and
its throughput (one call, so noisier than the figures above), and the outputs' agreement is
checked.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import torch
from common import (
    MatmulLimit,
    add_device_args,
    interleaved_best,
    report,
    report_load,
    rss_bytes,
    setup_device,
)
from torch.utils.flop_counter import FlopCounterMode

from promoter_modelling.backbones.enformer import EnformerRandomInit
from promoter_modelling.performance import set_cpu_threads, tune_cpu_allocator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_args(parser)
    parser.add_argument("--enformer-batch-200", type=int, default=16, help="Enformer batch at 200 bp")
    parser.add_argument("--enformer-batch-1177", type=int, default=8, help="Enformer batch at 1,177 bp")
    parser.add_argument("--malinois-batch", type=int, default=256, help="Malinois batch at 200 bp")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds per workload (best is kept)")
    parser.add_argument("--matmul-n", type=int, default=4096, help="size of the matmul that sets the limit")
    parser.add_argument("--memory-batch", type=int, default=512)
    parser.add_argument("--memory-length", type=int, default=200)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    return parser.parse_args(argv)


def one_hot(batch: int, length: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    codes = torch.randint(0, 4, (batch, length), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.one_hot(codes, 4).float().to(device)


def batch_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Convolution and matmul FLOPs of one forward of this batch."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def load_malinois():
    """Malinois(n_outputs=5), or None with a notice when its module is not importable."""
    try:
        from promoter_modelling.backbones.malinois import Malinois
    except (ImportError, AttributeError) as exc:
        print(f"notice: Malinois skipped (promoter_modelling.backbones.malinois not importable: {exc})", flush=True)
        return None
    return Malinois(n_outputs=5)


def throughput(args: argparse.Namespace, device: torch.device) -> None:
    torch.manual_seed(0)
    workloads = {}  # name -> (model, inputs)
    enformer = EnformerRandomInit().to(device).eval()
    report("enformer_full.parameters", sum(p.numel() for p in enformer.parameters()))
    workloads["enformer_full.200bp"] = (enformer, one_hot(args.enformer_batch_200, 200, device))
    workloads["enformer_full.1177bp"] = (enformer, one_hot(args.enformer_batch_1177, 1177, device))
    malinois = load_malinois()
    if malinois is not None:
        malinois = malinois.to(device).eval()
        report("malinois_full.parameters", sum(p.numel() for p in malinois.parameters()))
        workloads["malinois_full.200bp"] = (malinois, one_hot(args.malinois_batch, 200, device))

    flops = {name: batch_flops(model, x) for name, (model, x) in workloads.items()}

    def infer(model: torch.nn.Module, x: torch.Tensor):
        def run() -> None:
            with torch.inference_mode():
                model(x)
        return run

    fns = {name: infer(model, x) for name, (model, x) in workloads.items()}
    limit = MatmulLimit(device, args.matmul_n, torch.float32)
    seconds, limit_flops = interleaved_best(fns, device, limit, repeats=args.repeats)
    report("matmul_limit_fp32", limit_flops / 1e9, "GFLOP/s")
    for name, (_, x) in workloads.items():
        batch = x.shape[0]
        achieved = flops[name] / seconds[name]
        report(f"{name}.batch", batch)
        report(f"{name}.forward_flops_per_sequence", flops[name] / batch / 1e9, "GFLOP")
        report(f"{name}.throughput", batch / seconds[name], "sequences/s")
        report(f"{name}.model_flops", achieved / 1e9, "GFLOP/s")
        report(f"{name}.efficiency_vs_matmul", 100 * achieved / limit_flops, "%")


def _clear_peak() -> bool:
    """Reset this process's VmHWM to its current resident set (Linux clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _memory_probe(batch: int, length: int, sliced: bool, threads: int, queue) -> None:
    """Runs in a fresh process: peak RSS growth of one no-grad forward of a large batch."""
    set_cpu_threads(threads)
    tune_cpu_allocator()
    torch.manual_seed(0)
    model = EnformerRandomInit().eval()
    if not sliced:
        model.cpu_inference_slice_bytes = 2**62
    x = one_hot(batch, length, torch.device("cpu"))
    with torch.no_grad():
        model(x[:8])  # warm-up: lazily allocated state, thread pools
        per_slice = model.slice_size(x)
        before = rss_bytes("VmRSS")
        reset = _clear_peak()
        start = time.perf_counter()
        out = model(x)
        seconds = time.perf_counter() - start
        peak = rss_bytes("VmHWM")
    queue.put({"growth": None if None in (before, peak) or not reset else peak - before, "rate": batch / seconds,
               "per_slice": per_slice or batch, "out": out[:4].tolist()})


def peak_memory(args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    results = {}
    for sliced in (True, False):
        queue = context.Queue()
        process = context.Process(target=_memory_probe, args=(args.memory_batch, args.memory_length, sliced,
                                                             torch.get_num_threads(), queue))
        process.start()
        results[sliced] = queue.get()
        process.join()
    prefix = f"enformer_full.no_grad_{args.memory_batch}x{args.memory_length}bp"
    report(f"{prefix}.sequences_per_slice", results[True]["per_slice"])
    for sliced, name in ((True, "sliced"), (False, "one_pass")):
        growth = results[sliced]["growth"]
        report(f"{prefix}.{name}.peak_rss_growth", "n/a" if growth is None else growth / 2**20, "MiB")
        report(f"{prefix}.{name}.throughput", results[sliced]["rate"], "sequences/s")
    same = torch.allclose(torch.tensor(results[True]["out"]), torch.tensor(results[False]["out"]), rtol=1e-5, atol=1e-5)
    report(f"{prefix}.sliced_equals_one_pass", "yes" if same else "NO")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup_device(args)
    throughput(args, device)
    if not args.no_memory:
        if device.type == "cpu":
            peak_memory(args)
        else:
            print("notice: the peak-memory measurement runs on CPU only", flush=True)
    report_load()


if __name__ == "__main__":
    main()
