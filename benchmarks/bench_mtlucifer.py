"""MTLucifer training and inference throughput, efficiency against the matmul limit, the
production path against the published (reference) computation, and peak memory.

    python benchmarks/bench_mtlucifer.py                       # published + demo size, CPU or GPU
    python benchmarks/bench_mtlucifer.py --sizes full --train-batch 96 --precision bf16   # GPU

Before timing, the production forward is checked against the reference forward (fp32, eval
mode, same inputs; they must agree to 1e-5). Then, for inference (torch.inference_mode) and
for training (forward, MSE loss on a 3-output linear head, backward and an AdamW step, in
train mode with dropout on), the production and reference paths are timed in alternating
rounds, each timing right after timing a large fp32 (bf16 with --precision bf16) matmul over
a window as long as the model timing:

    efficiency = analytic model FLOPs per sequence x sequences/s / matmul FLOP/s

with training counted as 3x the forward FLOPs, the best model time, and the highest matmul
rate seen as the limit. Peak memory is measured per path in a fresh process on CPU
(peak resident set) and with the CUDA allocator's peak on GPU.
"""

from __future__ import annotations

import argparse
import multiprocessing
from collections.abc import Callable

import torch
import torch.nn.functional as F
from common import (
    MatmulLimit,
    add_device_args,
    interleaved_best,
    report,
    report_load,
    rss_bytes,
    setup_device,
    synchronize,
)

from promoter_modelling.backbones.registry import build_backbone
from promoter_modelling.performance import autocast, maybe_compile, mtlucifer_flops, set_cpu_threads, tune_cpu_allocator
from promoter_modelling.sequence import codes_to_one_hot

DEFAULT_TRAIN_BATCH = {"full": 16, "small": 128, "tiny": 128}
DEFAULT_INFER_BATCH = {"full": 32, "small": 512, "tiny": 512}
PATHS = ("production", "reference")
# Dense bf16 peaks from the vendor datasheets (FLOP/s), matched against the CUDA device name.
DATASHEET_BF16_PEAK = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12),
                       ("L40S", 362e12), ("A10", 125e12)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_args(parser)
    parser.add_argument("--sizes", default="full,small", help="comma-separated model sizes (full, small, tiny)")
    parser.add_argument("--train-batch", type=int, default=None, help="training batch (default full 16, small 128)")
    parser.add_argument("--infer-batch", type=int, default=None, help="inference batch (default full 32, small 512)")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds per measurement (best is kept)")
    parser.add_argument("--seq-len", type=int, default=250)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: autocast on CUDA (falls back to fp32 on CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (opt-in)")
    parser.add_argument("--no-reference", action="store_true", help="time the production path only")
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--matmul-n", type=int, default=4096, help="size of the matmul that sets the limit")
    parser.add_argument("--peak-tflops", type=float, default=None, help="datasheet bf16 peak, if not in the table")
    return parser.parse_args(argv)


def datasheet_peak(device: torch.device, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in DATASHEET_BF16_PEAK if key in name), None)


def check_agreement(model: torch.nn.Module, x: torch.Tensor, prefix: str) -> bool:
    """Production vs reference forward in fp32, eval mode, on the same inputs."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model.set_naive_attention(False)
        fast = model(x)
        model.set_naive_attention(True)
        reference = model(x)
        model.set_naive_attention(False)
    model.train(was_training)
    diff = (fast - reference).abs().max().item()
    ok = bool(torch.allclose(fast, reference, rtol=1e-5, atol=1e-5))
    report(f"{prefix}.fp32_max_abs_diff_vs_reference", diff)
    report(f"{prefix}.fp32_agrees_1e-5", "yes" if ok else "NO")
    return ok


class Workload:
    """A model, a head, inputs and an optimizer, with one callable per (phase, path)."""

    def __init__(self, size: str, device: torch.device, batch: dict[str, int], seq_len: int, bf16: bool,
                 compile_model: bool = False) -> None:
        torch.manual_seed(0)
        self.device, self.bf16 = device, bf16
        self.model = build_backbone("MTLucifer", size).to(device)
        self.head = torch.nn.Linear(self.model.embed_dims, 3).to(device)
        generator = torch.Generator().manual_seed(1)
        n = max(batch.values())
        self.codes = torch.randint(0, 4, (n, seq_len), generator=generator, dtype=torch.uint8).to(device)
        self.targets = torch.randn(n, 3, generator=generator).to(device)
        self.batch = batch
        self.optimizer = torch.optim.AdamW(list(self.model.parameters()) + list(self.head.parameters()),
                                           lr=1e-5, weight_decay=1e-4)
        maybe_compile(self.model, compile_model)

    def call(self, phase: str, path: str) -> Callable[[], None]:
        model, head, device, bf16 = self.model, self.head, self.device, self.bf16
        codes = self.codes[: self.batch[phase]]
        targets = self.targets[: self.batch[phase]]

        def infer() -> None:
            model.eval()
            model.set_naive_attention(path == "reference")
            with torch.inference_mode(), autocast(device, bf16):
                model(codes_to_one_hot(codes))

        def train() -> None:
            model.train()
            model.set_naive_attention(path == "reference")
            with autocast(device, bf16):
                loss = F.mse_loss(head(model(codes_to_one_hot(codes))).float(), targets)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

        return infer if phase == "inference" else train


def _memory_probe(size: str, phase: str, path: str, batch: int, seq_len: int, threads: int, queue) -> None:
    """Runs in a fresh process: peak resident set of building the workload and running it twice."""
    set_cpu_threads(threads)
    tune_cpu_allocator()
    workload = Workload(size, torch.device("cpu"), {phase: batch}, seq_len, bf16=False)
    fn = workload.call(phase, path)
    fn()
    fn()
    queue.put(rss_bytes("VmHWM"))


def peak_memory(size: str, phase: str, path: str, batch: int, args: argparse.Namespace, device: torch.device,
                workload: Workload) -> tuple[str, float | None]:
    """(kind, MiB): CUDA allocator peak of one call, or the peak RSS of a fresh CPU process."""
    if device.type == "cuda":
        fn = workload.call(phase, path)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return "cuda_allocated", torch.cuda.max_memory_allocated(device) / 2**20
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_memory_probe,
                              args=(size, phase, path, batch, args.seq_len, torch.get_num_threads(), queue))
    process.start()
    value = queue.get()
    process.join()
    return "process_peak_rss", None if value is None else value / 2**20


def bench_size(size: str, args: argparse.Namespace, device: torch.device) -> None:
    bf16 = args.precision == "bf16" and device.type == "cuda"
    batch = {"inference": args.infer_batch or DEFAULT_INFER_BATCH[size],
             "training": args.train_batch or DEFAULT_TRAIN_BATCH[size]}
    workload = Workload(size, device, batch, args.seq_len, bf16, args.compile)
    model = workload.model
    flops = mtlucifer_flops(model, args.seq_len)
    prefix = f"mtlucifer_{size}"
    report(f"{prefix}.parameters", sum(p.numel() for p in model.parameters()))
    report(f"{prefix}.forward_flops_per_sequence", flops / 1e9, "GFLOP")
    check_agreement(model, codes_to_one_hot(workload.codes[:8]), prefix)

    limit = MatmulLimit(device, args.matmul_n, torch.bfloat16 if bf16 else torch.float32)
    limit_name = "bf16" if bf16 else "fp32"
    paths = PATHS[:1] if args.no_reference else PATHS
    peak = datasheet_peak(device, args.peak_tflops) if bf16 else None
    phases = [p for p, skip in (("inference", args.no_inference), ("training", args.no_training)) if not skip]
    for phase in phases:
        factor = 3 if phase == "training" else 1
        fns = {path: workload.call(phase, path) for path in paths}
        seconds, limit_flops = interleaved_best(fns, device, limit, repeats=args.repeats,
                                                warmup=2 if args.compile else 1)
        report(f"{prefix}.{phase}.batch", batch[phase])
        report(f"{prefix}.{phase}.matmul_limit_{limit_name}", limit_flops / 1e9, "GFLOP/s")
        rates = {}
        for path in paths:
            rates[path] = batch[phase] / seconds[path]
            achieved = factor * flops * rates[path]
            name = f"{prefix}.{phase}.{path}"
            report(f"{name}.throughput", rates[path], "sequences/s")
            report(f"{name}.model_flops", achieved / 1e9, "GFLOP/s")
            report(f"{name}.efficiency_vs_matmul", 100 * achieved / limit_flops, "%")
            if peak:
                report(f"{name}.fraction_of_datasheet_bf16_peak", 100 * achieved / peak, "%")
        if "reference" in rates:
            report(f"{prefix}.{phase}.production_over_reference", rates["production"] / rates["reference"], "x")
        if not args.no_memory:
            for path in paths:
                kind, mib = peak_memory(size, phase, path, batch[phase], args, device, workload)
                report(f"{prefix}.{phase}.{path}.peak_memory_{kind}", mib, "MiB")
        workload.model.set_naive_attention(False)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup_device(args)
    if device.type == "cuda":
        # fp32 means fp32: no TF32 in the agreement check or in the fp32 limit.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.precision == "bf16" and device.type != "cuda":
        print("notice: bf16 autocast is used on CUDA only; measuring fp32", flush=True)
    report("precision", "bf16-mixed" if args.precision == "bf16" and device.type == "cuda" else "fp32")
    report("compiled", "yes" if args.compile else "no")
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        bench_size(size, args, device)
    report_load()


if __name__ == "__main__":
    main()
