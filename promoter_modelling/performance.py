"""Opt-in speed settings shared by training, analysis and the benchmarks.

- `maybe_compile(module, enabled)`: torch.compile in place (state-dict keys unchanged).
- `select_precision(requested, device)`: Lightning precision string; mixed precision (bf16
  autocast) only on CUDA, "32-true" with a notice elsewhere.
- `autocast(device, enabled)`: the same choice as a context manager for code outside Lightning.
- `set_cpu_threads(n)`: one intra-op thread per core by default.
- `tune_cpu_allocator()`: keep freed memory in the process (glibc) so large tensors are not
  page-faulted afresh at every layer.
- `mtlucifer_flops(model, seq_len)`: analytic forward FLOPs per sequence, used to express
  throughput as a fraction of the machine's matmul rate.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

import torch
from torch import nn

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def maybe_compile(module: nn.Module, enabled: bool, **options) -> nn.Module:
    """Compile `module` in place with torch.compile when `enabled`; returns the module.

    `nn.Module.compile` keeps parameter names (no `_orig_mod.` prefix), so checkpoints written
    from a compiled model load into an uncompiled one. The first steps are slower while kernels
    are generated; whether later steps are faster depends on the machine (docs/performance.md).
    """
    if not enabled:
        return module
    if not hasattr(module, "compile"):
        print("notice: this torch version has no nn.Module.compile; running uncompiled", file=sys.stderr)
        return module
    module.compile(**options)
    return module


def _device_type(device: str | torch.device | None) -> str:
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "gpu":
        return "cuda"
    return torch.device(device).type


def select_precision(requested: str | bool = "bf16-mixed", device: str | torch.device | None = None) -> str:
    """Lightning `precision` for a run.

    `requested` is a Lightning string ("32-true", "bf16-mixed", "16-mixed"; "bf16"/"16"/"32"
    accepted) or a bool (True = bf16). Mixed precision is returned only for a CUDA device (bf16
    only where the GPU supports it); otherwise "32-true", with a notice on stderr when mixed
    precision was asked for. `device` is "cpu", "cuda", "gpu", "auto" or None (auto).
    """
    if isinstance(requested, bool):
        requested = "bf16-mixed" if requested else "32-true"
    aliases = {"bf16": "bf16-mixed", "16": "16-mixed", "32": "32-true", "fp32": "32-true"}
    requested = aliases.get(str(requested), str(requested))
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; expected 32-true, bf16-mixed or 16-mixed")
    if requested == "32-true":
        return requested
    on_cuda = _device_type(device) == "cuda" and torch.cuda.is_available()
    if on_cuda and (requested == "16-mixed" or torch.cuda.is_bf16_supported()):
        return requested
    reason = "no CUDA device" if not on_cuda else "this GPU has no bf16"
    print(f"notice: {requested} needs a CUDA device ({reason}); using 32-true", file=sys.stderr)
    return "32-true"


def autocast(device: str | torch.device | None = None, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when enabled, a no-op context elsewhere."""
    on_cuda = _device_type(device) == "cuda" and torch.cuda.is_available()
    if enabled and on_cuda and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def physical_cores() -> int:
    """CPUs this process may run on (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_cpu_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads (default: one per available CPU); returns the number set."""
    n = num_threads or physical_cores()
    torch.set_num_threads(n)
    return n


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_allocator_tuned = False


def tune_cpu_allocator() -> bool:
    """Serve every allocation from the glibc heap and keep freed memory for reuse.

    By default glibc maps each allocation above 32 MiB afresh and unmaps it when freed, so every
    large activation is page-faulted and zeroed by the kernel again (on a virtual machine this
    can cost more than the arithmetic on the tensor). With mmap disabled and a high trim
    threshold, freed blocks are reused. The process then keeps its peak memory until exit, as
    a GPU caching allocator does. Returns False (and changes nothing) where glibc's mallopt is
    not available; the environment variables MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=-1 have
    the same effect for any program started with them.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
        # -1 disables trimming altogether (mallopt(3)).
        ok = (libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, -1) == 1
              and libc.mallopt(_M_TOP_PAD, 64 * 2**20) == 1)
    except (OSError, AttributeError):
        return False
    _allocator_tuned = ok
    return ok


def mtlucifer_flops(model: nn.Module, seq_len: int = 250) -> int:
    """Analytic forward FLOPs per sequence of an MTLucifer (2 per multiply-add).

    Counts the convolutions, the q/k/v/fc1/fc2/fc3 matmuls and the two attention matmuls
    (q k^T and weights . v) over T = seq_len + 1 tokens. Elementwise work (norms, GELU,
    softmax, rotary, dropout) is not counted: it is the overhead the efficiency figure exposes.
    A training step is taken as 3x the forward (gradients for inputs and weights).
    """
    flops = 0
    length = seq_len
    for block in model.promoter_cnn:
        conv = block.cnn
        out_len = length if conv.padding == "same" else (
            length + 2 * conv.padding[0] - conv.dilation[0] * (conv.kernel_size[0] - 1) - 1) // conv.stride[0] + 1
        flops += 2 * out_len * conv.out_channels * conv.in_channels * conv.kernel_size[0] // conv.groups
        length = out_len
    tokens = length + 1
    for block in model.promoter_transformer:
        d = block.fc1.in_features
        mlp = block.fc2.out_features
        flops += 2 * tokens * d * d * 4  # xq, xk, xv, fc1
        flops += 2 * tokens * d * mlp * 2  # fc2, fc3
        flops += 2 * tokens * tokens * d * 2  # q k^T and weights . v over all heads
    return flops
