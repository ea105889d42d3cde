"""One-hot encoding throughput: strings -> uint8 codes -> float32 (N, L, 4).

    python benchmarks/bench_onehot.py                        # 100,000 random 250-bp sequences
    python benchmarks/bench_onehot.py --num-sequences 1000000 --device cuda

Reports the time of the published-format encoder (`sequence.one_hot`: strings to a float32
(N, L, 4) array), its two stages (strings -> uint8 codes, codes -> one-hot) and the
expansion of uint8 codes to one-hot on the device (`codes_to_one_hot`), which is what the
training loop runs on every batch.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import add_device_args, best_time, report, report_load, setup_device

from promoter_modelling import sequence as seqlib


def random_sequences(n: int, length: int, seed: int = 0) -> list[str]:
    """n random ACGT strings of one length, generated without a per-base Python loop."""
    return seqlib.decode(np.random.default_rng(seed).integers(0, 4, size=(n, length), dtype=np.uint8))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_args(parser)
    parser.add_argument("--num-sequences", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = setup_device(args)
    n = args.num_sequences
    sequences = random_sequences(n, args.length)
    report("onehot.sequences", n)
    report("onehot.length", args.length, "bp")

    cpu = torch.device("cpu")
    seconds = best_time(lambda: seqlib.one_hot(sequences), cpu, repeats=args.repeats)
    report("onehot.strings_to_float32_onehot.time", seconds, "s")
    report("onehot.strings_to_float32_onehot.throughput", n / seconds, "sequences/s")

    seconds = best_time(lambda: seqlib.encode(sequences), cpu, repeats=args.repeats)
    report("onehot.strings_to_uint8_codes.time", seconds, "s")
    codes = seqlib.encode(sequences)
    seconds = best_time(lambda: seqlib.ONE_HOT_TABLE.take(codes, axis=0), cpu, repeats=args.repeats)
    report("onehot.uint8_codes_to_float32_onehot_numpy.time", seconds, "s")
    fancy = best_time(lambda: seqlib.ONE_HOT_TABLE[codes], cpu, repeats=args.repeats)
    report("onehot.numpy_fancy_indexing_instead_of_take.time", fancy, "s")
    report("onehot.take_speedup_over_fancy_indexing", fancy / seconds, "x")

    on_device = torch.from_numpy(codes).to(device)
    seconds = best_time(lambda: seqlib.codes_to_one_hot(on_device), device, repeats=args.repeats)
    report(f"onehot.uint8_codes_to_onehot_{device.type}.time", seconds, "s")
    report(f"onehot.uint8_codes_to_onehot_{device.type}.throughput", n / seconds, "sequences/s")
    report("onehot.uint8_bytes_per_sequence", codes[0].nbytes, "B")
    report("onehot.float32_onehot_bytes_per_sequence", args.length * 4 * 4, "B")
    report_load()


if __name__ == "__main__":
    main()
