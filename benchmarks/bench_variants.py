"""Variant scoring: 100,000 SNVs in fixture-genome promoters with the demo's model (small MTLucifer).

    python benchmarks/bench_variants.py --run_dir <demo run> --num_snvs 100000 --work_dir bench_variants

Writes a fixture genome (23 chromosomes, --chrom_length bases each) and a VCF of --num_snvs SNVs
drawn uniformly in the promoter windows of its genes (REF from the genome, a random other base
as ALT), then times what `promoter-modelling variants` does: reading the VCF, checking every REF
against the FASTA, finding the promoters each SNV affects, building the ALT windows and
predicting reference and alternative windows, and writing the table. Prints each stage's time
and the SNVs scored per second.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd


def write_inputs(work_dir: str, chrom_length: int, num_snvs: int, seed: int = 0) -> tuple[str, str, str]:
    """(fasta, vcf, tss table) of a fixture genome and SNVs in its promoter windows."""
    from promoter_modelling.fixtures.genome import ensure_genome
    from promoter_modelling.genome import Genome

    layout = ensure_genome(work_dir, "hg38", chrom_length=chrom_length)
    fasta = os.path.join(work_dir, "common", "hg38.fa")
    genes = layout.genes.reset_index(drop=True)
    tss_path = os.path.join(work_dir, "promoters.tsv")
    pd.DataFrame({"gene": [f"G{i}" for i in range(len(genes))], "chrom": genes["chrom"], "position": genes["tss"],
                  "strand": np.where(genes["strand"] > 0, "+", "-")}).to_csv(tss_path, sep="\t", index=False)
    rng = np.random.default_rng(seed)
    pick = rng.integers(len(genes), size=num_snvs)
    offsets = rng.integers(-300, 350, size=num_snvs)
    strand = genes["strand"].to_numpy()[pick]
    pos = genes["tss"].to_numpy()[pick] + np.where(strand > 0, offsets, -offsets)
    chroms = genes["chrom"].to_numpy()[pick]
    ref = Genome(fasta).fetch_codes(chroms, pos - 1, 1)[:, 0]
    keep = ref < 4
    alt = (ref + rng.integers(1, 4, size=num_snvs)) % 4
    letters = np.array(list("ACGT"))
    frame = pd.DataFrame({"#CHROM": chroms[keep], "POS": pos[keep], "ID": [f"v{i}" for i in range(int(keep.sum()))],
                          "REF": letters[ref[keep]], "ALT": letters[alt[keep]], "QUAL": 50, "FILTER": "PASS",
                          "INFO": "."}).sort_values(["#CHROM", "POS"])
    vcf = os.path.join(work_dir, "snvs.vcf")
    with open(vcf, "w", encoding="utf-8") as handle:
        handle.write("##fileformat=VCFv4.2\n")
        frame.to_csv(handle, sep="\t", index=False)
    return fasta, vcf, tss_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", default="bench_variants")
    parser.add_argument("--run_dir", required=True, help="a trained run folder of the demo's model")
    parser.add_argument("--num_snvs", type=int, default=100_000)
    parser.add_argument("--chrom_length", type=int, default=200_000)
    parser.add_argument("--batch_size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    from promoter_modelling.design.ensemble import Ensemble
    from promoter_modelling.genome import Genome
    from promoter_modelling.interpret import variants as scoring
    from promoter_modelling.interpret.vcf import read_vcf
    from promoter_modelling.predict import run_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    fasta, vcf, tss_path = write_inputs(args.work_dir, args.chrom_length, args.num_snvs)
    times = {}
    start = time.perf_counter()
    variants = read_vcf(vcf)
    promoters = scoring.read_promoters(tss_path, "tss")
    genome = Genome(fasta)
    times["read VCF and promoters"] = time.perf_counter() - start
    start = time.perf_counter()
    scoring.check_promoters(promoters, genome, tss_path)
    scoring.check_variants(variants, genome, vcf)
    times["check REF and chromosomes"] = time.perf_counter() - start
    ensemble = Ensemble([run_checkpoint(args.run_dir)], None)
    options = scoring.VariantOptions(batch_size=args.batch_size)
    start = time.perf_counter()
    table = scoring.score_variants(variants, promoters, genome,
                                   lambda codes: ensemble.predict(codes, batch_size=args.batch_size),
                                   ensemble.cells, options)
    times["score (windows + predictions)"] = time.perf_counter() - start
    start = time.perf_counter()
    scoring.write_variant_table(table, os.path.join(args.work_dir, "effects.tsv.gz"))
    times["write table"] = time.perf_counter() - start
    total = sum(times.values())
    scored = int((table["status"] == "scored").sum() // len(ensemble.cells))
    print(f"{len(variants)} SNVs, {len(promoters)} promoters, {scored} variant-promoter pairs scored, "
          f"torch threads {torch.get_num_threads()}")
    for stage, seconds in times.items():
        print(f"  {stage}: {seconds:.1f} s")
    print(f"total {total:.0f} s ({len(variants) / total:.0f} SNVs/s)")


if __name__ == "__main__":
    main()
