"""Attributions of demo promoters with the demo's model (small MTLucifer), and TF-MoDISco on them.

    python benchmarks/bench_attribution.py --work_dir bench_design --num_promoters 10000
    python benchmarks/bench_attribution.py --run_dir <demo run> --num_promoters 500 --method ism
    python benchmarks/bench_attribution.py --run_dir <demo run> --config_path <its config> --modisco

Promoters are demo-like (random background with planted motifs, the generator of the demo data),
or with --config_path the test promoters of the run's own FluorescenceData.
Prints the wall time of `interpret.attribution.attribute` (one seed, every output of the head),
promoters per second, the time 10,000 promoters take at that rate (measured when
--num_promoters is 10,000), the largest DeepLIFT additivity error, the attribution
concentration on planted driver sites per cell (mean |contribution| inside / outside) and, with
--modisco, the TF-MoDISco patterns matched to the bundled JASPAR file plus the demo's motifs.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def demo_promoters(n: int, seed: int = 1) -> np.ndarray:
    """(n, 250) uint8 codes drawn like the demo data (planted motifs on a random background)."""
    from promoter_modelling.fixtures.motifs import plant, random_background

    rng = np.random.default_rng(seed)
    chars = random_background(rng, n, 250)
    plant(rng, chars)
    return np.searchsorted(np.array(list("ACGT")), chars).astype(np.uint8)


def concentration(attributions) -> dict[str, float]:
    """Per output: mean |contribution| on planted copies of motifs driving it / elsewhere."""
    from promoter_modelling.fixtures.motifs import CELLS, PLANTED_MOTIFS, planted_site_mask

    contributions = np.abs(attributions.contributions())
    ratios = {}
    for o, cell in enumerate(attributions.outputs):
        drivers = [name for name, (_, effects) in PLANTED_MOTIFS.items() if abs(effects[CELLS.index(cell)]) >= 0.5]
        inside = planted_site_mask(attributions.codes, drivers)
        has = inside.any(axis=1)
        values = contributions[has, o]
        ratios[cell] = float(values[inside[has]].mean() / values[~inside[has]].mean())
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", default="bench_design", help="where the demo's model is trained if needed")
    parser.add_argument("--run_dir", default=None, help="a trained run folder of the demo's model")
    parser.add_argument("--num_promoters", type=int, default=10_000)
    parser.add_argument("--config_path", default=None,
                        help="explain the test promoters of the run's FluorescenceData (this config names its data) "
                             "instead of --num_promoters generated ones")
    parser.add_argument("--method", default="deeplift", choices=("deeplift", "ism"))
    parser.add_argument("--n_shuffles", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=None, help="default: the package's (16 DeepLIFT, 256 ISM)")
    parser.add_argument("--modisco", action="store_true", help="also run TF-MoDISco on the attributions")
    parser.add_argument("--save", default=None, help="write the attributions to this .npz")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    from promoter_modelling.design.ensemble import Ensemble
    from promoter_modelling.interpret.attribution import AttributionOptions, attribute
    from promoter_modelling.predict import run_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    run = args.run_dir
    if run is None:
        from bench_design import train_ensemble

        run = train_ensemble(args.work_dir, 1)[0]
    ensemble = Ensemble([run_checkpoint(run)], None)
    if args.config_path:
        from promoter_modelling.config import load_paths
        from promoter_modelling.interpret.sources import from_task

        codes = from_task(load_paths(args.config_path), "FluorescenceData", "test", ensemble.models).codes
    else:
        codes = demo_promoters(args.num_promoters)
    options = AttributionOptions(method=args.method, n_shuffles=args.n_shuffles, batch_size=args.batch_size)
    start = time.perf_counter()
    attributions = attribute(ensemble, codes, [f"p{i}" for i in range(len(codes))], options)
    seconds = time.perf_counter() - start
    rate = len(codes) / seconds
    print(f"{args.method}: {len(codes)} promoters x {len(attributions.outputs)} outputs in {seconds:.0f} s "
          f"({rate:.2f} promoters/s, torch threads {torch.get_num_threads()}); 10,000 promoters: "
          f"{10_000 / rate / 60:.0f} min{'' if len(codes) == 10_000 else ' at this rate'}")
    if args.method == "deeplift":
        print(f"largest additivity error {float(np.nanmax(attributions.additivity)):.2e}")
    print("mean |contribution| inside planted driver sites / outside: "
          + ", ".join(f"{cell} {ratio:.1f}x" for cell, ratio in concentration(attributions).items()))
    if args.save:
        from promoter_modelling.interpret.store import save_attributions

        save_attributions(attributions, args.save)
    if args.modisco:
        import tempfile

        from promoter_modelling.fixtures.motifs import demo_meme_motifs, meme_text
        from promoter_modelling.interpret.modisco import ModiscoOptions, run_modisco

        with tempfile.TemporaryDirectory() as tmp:
            meme = os.path.join(tmp, "demo.meme")
            with open(meme, "w", encoding="utf-8") as handle:
                handle.write(meme_text(demo_meme_motifs()))
            start = time.perf_counter()
            table = run_modisco(attributions, ModiscoOptions(meme_files=(meme,)),
                                os.path.join(tmp, "modisco"))
            print(f"TF-MoDISco and matching: {time.perf_counter() - start:.0f} s")
            print(table[["output", "pattern", "seqlets", "consensus", "match_1", "qvalue_1"]].to_string(index=False))


if __name__ == "__main__":
    main()
