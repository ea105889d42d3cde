"""Helpers shared by the benchmark scripts: output format, timing, matmul limit, peak memory.

Every figure is printed on its own line as `name: value unit`. Times are the best of several
repeats (after warm-up), the same statistic for the model and for the matmul it is compared to,
so a burst of load from other processes inflates neither.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from promoter_modelling.performance import set_cpu_threads  # noqa: E402


def report(name: str, value: float | int | str, unit: str = "") -> None:
    """Print one figure: `name: value unit`."""
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.4e}"
    else:
        text = str(value)
    print(f"{name}: {text} {unit}".rstrip(), flush=True)


def add_device_args(parser: argparse.ArgumentParser) -> None:
    """--device and --threads, shared by every script."""
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU intra-op threads (default: one per CPU)")


def setup_device(args: argparse.Namespace) -> torch.device:
    """Resolve --device, set CPU threads and print the machine description."""
    name = args.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    threads = set_cpu_threads(args.threads)
    report("torch", torch.__version__)
    report("cpu_threads", threads)
    if device.type == "cuda":
        report("device", torch.cuda.get_device_name(device))
    else:
        report("device", f"cpu ({torch.backends.cpu.get_cpu_capability()})")
    return device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device, repeats: int = 3, warmup: int = 1) -> float:
    """Best wall time of `repeats` calls of fn after `warmup` calls, in seconds."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def matmul_flops(device: torch.device, n: int = 4096, dtype: torch.dtype = torch.float32, repeats: int = 5) -> float:
    """FLOP/s of an (n, n) @ (n, n) torch.matmul in `dtype`: the machine's dense-math limit."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    seconds = best_time(lambda: torch.matmul(a, b, out=out), device, repeats=repeats, warmup=2)
    return 2 * n**3 / seconds


class PeakMemory:
    """Peak memory of the code inside the block: CUDA allocator peak on GPU, resident set
    high-water mark (reset on entry through /proc/self/clear_refs) on Linux CPUs."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                with open("/proc/self/clear_refs", "w") as handle:
                    handle.write("5")
            except OSError:
                pass
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
            return
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        self.peak_bytes = int(line.split()[1]) * 1024
        except OSError:
            self.peak_bytes = None

    @property
    def kind(self) -> str:
        return "cuda_allocated" if self.device.type == "cuda" else "process_rss"
