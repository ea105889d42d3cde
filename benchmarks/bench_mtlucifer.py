"""MTLucifer training and inference throughput, efficiency against the matmul limit, and the
production path against the published (reference) computation.

    python benchmarks/bench_mtlucifer.py                       # published + demo size, CPU or GPU
    python benchmarks/bench_mtlucifer.py --sizes full --train-batch 96 --precision bf16   # GPU

For each size and path (production, reference) the script times a large fp32 (or bf16)
torch.matmul right before the model, then reports sequences/s and
efficiency = analytic model FLOPs per sequence x sequences/s / matmul FLOP/s
(training counts 3x the forward FLOPs). Before timing, it checks that the production forward
equals the reference forward to 1e-5 in fp32 (eval mode). A training step is forward, MSE loss
on a 3-output linear head, backward and an AdamW step, in train mode (dropout on).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from common import PeakMemory, add_device_args, best_time, matmul_flops, report, setup_device

from promoter_modelling.backbones.registry import build_backbone
from promoter_modelling.performance import autocast, maybe_compile, mtlucifer_flops
from promoter_modelling.sequence import codes_to_one_hot

DEFAULT_TRAIN_BATCH = {"full": 16, "small": 128, "tiny": 128}
DEFAULT_INFER_BATCH = {"full": 32, "small": 512, "tiny": 512}
# Dense bf16 peaks from the vendor datasheets (FLOP/s), matched against the CUDA device name.
DATASHEET_BF16_PEAK = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12),
                       ("L40S", 362e12), ("A10", 125e12)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_args(parser)
    parser.add_argument("--sizes", default="full,small", help="comma-separated model sizes (full, small, tiny)")
    parser.add_argument("--train-batch", type=int, default=None, help="training batch (default full 16, small 128)")
    parser.add_argument("--infer-batch", type=int, default=None, help="inference batch (default full 32, small 512)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats per measurement (best is kept)")
    parser.add_argument("--seq-len", type=int, default=250)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: autocast on CUDA (falls back to fp32 on CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (opt-in)")
    parser.add_argument("--no-reference", action="store_true", help="skip timing the reference path")
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--no-inference", action="store_true")
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


def bench_size(size: str, args: argparse.Namespace, device: torch.device) -> None:
    torch.manual_seed(0)
    model = build_backbone("MTLucifer", size).to(device)
    head = torch.nn.Linear(model.embed_dims, 3).to(device)
    flops = mtlucifer_flops(model, args.seq_len)
    prefix = f"mtlucifer_{size}"
    report(f"{prefix}.parameters", sum(p.numel() for p in model.parameters()))
    report(f"{prefix}.forward_flops_per_sequence", flops / 1e9, "GFLOP")

    generator = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 4, (max(args.infer_batch or DEFAULT_INFER_BATCH[size],
                                     args.train_batch or DEFAULT_TRAIN_BATCH[size]), args.seq_len),
                          generator=generator, dtype=torch.uint8).to(device)
    targets = torch.randn(codes.shape[0], 3, generator=generator).to(device)
    check_agreement(model, codes_to_one_hot(codes[:8]), prefix)

    bf16 = args.precision == "bf16" and device.type == "cuda"
    limit_dtype = torch.bfloat16 if bf16 else torch.float32
    limit_name = "bf16" if bf16 else "fp32"
    maybe_compile(model, args.compile)
    paths = ["production"] if args.no_reference else ["production", "reference"]
    peak = datasheet_peak(device, args.peak_tflops) if bf16 else None

    if not args.no_inference:
        batch = args.infer_batch or DEFAULT_INFER_BATCH[size]
        x_codes = codes[:batch]
        model.eval()
        rates = {}
        for path in paths:
            model.set_naive_attention(path == "reference")
            limit = matmul_flops(device, args.matmul_n, limit_dtype)

            def infer() -> torch.Tensor:
                with torch.inference_mode(), autocast(device, bf16):
                    return model(codes_to_one_hot(x_codes))

            with PeakMemory(device) as memory:
                seconds = best_time(infer, device, repeats=args.repeats, warmup=2 if args.compile else 1)
            rates[path] = batch / seconds
            name = f"{prefix}.inference.{path}"
            report(f"{name}.batch", batch)
            report(f"{name}.matmul_limit_{limit_name}", limit / 1e9, "GFLOP/s")
            report(f"{name}.throughput", rates[path], "sequences/s")
            report(f"{name}.model_flops", flops * rates[path] / 1e9, "GFLOP/s")
            report(f"{name}.efficiency_vs_matmul", 100 * flops * rates[path] / limit, "%")
            if peak:
                report(f"{name}.fraction_of_datasheet_bf16_peak", 100 * flops * rates[path] / peak, "%")
            report(f"{name}.peak_memory_{memory.kind}", memory.peak_bytes / 2**20, "MiB")
        model.set_naive_attention(False)
        if "reference" in rates:
            report(f"{prefix}.inference.production_over_reference", rates["production"] / rates["reference"], "x")

    if not args.no_training:
        batch = args.train_batch or DEFAULT_TRAIN_BATCH[size]
        x_codes, y = codes[:batch], targets[:batch]
        model.train()
        params = list(model.parameters()) + list(head.parameters())
        optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=1e-4)
        rates = {}
        for path in paths:
            model.set_naive_attention(path == "reference")
            limit = matmul_flops(device, args.matmul_n, limit_dtype)

            def step() -> None:
                with autocast(device, bf16):
                    loss = F.mse_loss(head(model(codes_to_one_hot(x_codes))).float(), y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            with PeakMemory(device) as memory:
                seconds = best_time(step, device, repeats=args.repeats, warmup=2 if args.compile else 1)
            rates[path] = batch / seconds
            name = f"{prefix}.training.{path}"
            report(f"{name}.batch", batch)
            report(f"{name}.matmul_limit_{limit_name}", limit / 1e9, "GFLOP/s")
            report(f"{name}.throughput", rates[path], "sequences/s")
            report(f"{name}.model_flops", 3 * flops * rates[path] / 1e9, "GFLOP/s")
            report(f"{name}.efficiency_vs_matmul", 100 * 3 * flops * rates[path] / limit, "%")
            if peak:
                report(f"{name}.fraction_of_datasheet_bf16_peak", 100 * 3 * flops * rates[path] / peak, "%")
            report(f"{name}.peak_memory_{memory.kind}", memory.peak_bytes / 2**20, "MiB")
        model.set_naive_attention(False)
        if "reference" in rates:
            report(f"{prefix}.training.production_over_reference", rates["production"] / rates["reference"], "x")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup_device(args)
    if device.type == "cuda":
        # fp32 means fp32: no TF32 in the agreement check or the fp32 limit.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.precision == "bf16" and device.type != "cuda":
        print("notice: bf16 autocast is used on CUDA only; measuring fp32", flush=True)
    report("precision", "bf16-mixed" if args.precision == "bf16" and device.type == "cuda" else "fp32")
    report("compiled", "yes" if args.compile else "no")
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        bench_size(size, args, device)


if __name__ == "__main__":
    main()
