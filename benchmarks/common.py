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

from promoter_modelling.performance import set_cpu_threads, tune_cpu_allocator  # noqa: E402


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
    parser.add_argument("--no-tune-allocator", action="store_true",
                        help="leave glibc malloc as it is (default: keep freed memory, see performance.py)")


def setup_device(args: argparse.Namespace) -> torch.device:
    """Resolve --device, set CPU threads and print the machine description."""
    name = args.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    threads = set_cpu_threads(args.threads)
    tuned = False if args.no_tune_allocator else tune_cpu_allocator()
    report("torch", torch.__version__)
    report("cpu_threads", threads)
    report("cpu_allocator_tuned", "yes" if tuned else "no")
    report_load()
    if device.type == "cuda":
        report("device", torch.cuda.get_device_name(device))
    else:
        report("device", f"cpu ({torch.backends.cpu.get_cpu_capability()})")
    return device


def report_load() -> None:
    """The 1-minute load average: other processes competing for the CPUs skew every figure."""
    if hasattr(os, "getloadavg"):
        report("loadavg_1min", round(os.getloadavg()[0], 2), f"(on {os.cpu_count()} CPUs)")


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


class MatmulLimit:
    """FLOP/s of an (n, n) @ (n, n) torch.matmul in `dtype`: the machine's dense-math limit.

    A call runs back-to-back products for at least `window` seconds (at least `min_products`)
    and returns their average rate, so the limit can be timed over as long a window as the
    model timing it is compared with: on a machine shared with other work, a short window
    would catch a quiet moment more easily than a long one.
    """

    def __init__(self, device: torch.device, n: int = 4096, dtype: torch.dtype = torch.float32,
                 min_products: int = 2) -> None:
        generator = torch.Generator(device="cpu").manual_seed(0)
        self.a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
        self.b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
        self.out = torch.empty(n, n, device=device, dtype=dtype)
        self.device, self.n, self.min_products, self.warm = device, n, min_products, False

    def __call__(self, window: float = 0.0) -> float:
        if not self.warm:
            for _ in range(2):
                torch.matmul(self.a, self.b, out=self.out)
            self.warm = True
        synchronize(self.device)
        count, start = 0, time.perf_counter()
        while count < self.min_products or time.perf_counter() - start < window:
            torch.matmul(self.a, self.b, out=self.out)
            synchronize(self.device)
            count += 1
        return 2 * self.n**3 * count / (time.perf_counter() - start)


def interleaved_best(fns: dict[str, Callable[[], object]], device: torch.device, limit: MatmulLimit,
                     repeats: int = 2, warmup: int = 1) -> tuple[dict[str, float], float]:
    """Best time of each fn, timed in alternating rounds, each right after timing the matmul
    limit over a window as long as that fn's previous run.

    Alternating the candidates (and the matmul) exposes them to the same background load, so
    their ratio is fair on a shared machine. Returns the best seconds per name and the highest
    matmul FLOP/s seen (the most demanding limit).
    """
    last = dict.fromkeys(fns, 0.0)
    for name, fn in fns.items():
        for _ in range(warmup):
            start = time.perf_counter()
            fn()
            synchronize(device)
            last[name] = time.perf_counter() - start
    best = dict.fromkeys(fns, float("inf"))
    highest = 0.0
    for _ in range(repeats):
        for name, fn in fns.items():
            highest = max(highest, limit(last[name]))
            start = time.perf_counter()
            fn()
            synchronize(device)
            last[name] = time.perf_counter() - start
            best[name] = min(best[name], last[name])
    return best, highest


def rss_bytes(field: str = "VmHWM") -> int | None:
    """A memory figure of this process from /proc/self/status (VmHWM: peak resident set)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
