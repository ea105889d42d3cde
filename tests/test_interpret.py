"""`promoter-modelling attribute` on a small MTLucifer trained on the demo data: attributions sit on
the planted motifs, ISM equals explicit mutate-and-predict, DeepLIFT/SHAP is additive, the archive
round-trips, the command's outputs and refusals; variant scoring with the trained model."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import raises

from promoter_modelling import cli
from promoter_modelling.design.ensemble import Ensemble
from promoter_modelling.fixtures.motifs import CELLS, PLANTED_MOTIFS, planted_site_mask
from promoter_modelling.interpret.attribution import AttributionOptions, attribute
from promoter_modelling.interpret.store import load_attributions, save_attributions
from promoter_modelling.predict import run_checkpoint

DRIVING_EFFECT = 0.5  # a motif drives a cell when its planted effect is at least this large


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A small MTLucifer trained for 8 epochs on 2,000 demo promoters (fewer leave GATA_like and SPI1_like
    unlearned: measured, docs/interpretation.md)."""
    from promoter_modelling.demo_data import generate
    from promoter_modelling.strategies import run_strategy

    root = tmp_path_factory.mktemp("interpret")
    data = str(root / "data")
    generate(data, ["FluorescenceData"], seed=0, num_sequences=2000)
    config = str(root / "config.json")
    with open(config, "w", encoding="utf-8") as handle:
        json.dump({"root_dir": str(root / "results"), "root_data_dir": data}, handle)
    run_strategy(cli.parse_train_args([
        "--config_path", config, "--modelling_strategy", "single_task", "--single_task", "FluorescenceData",
        "--model_size", "small", "--max_epochs", "8", "--batch_size", "32", "--lr", "1e-3",
        "--num_random_seeds", "1", "--loggers", "csv", "--accelerator", "cpu"]))
    run = str(root / "results" / "saved_models" / "individual_training_on_FluorescenceData_small")
    return {"root": root, "config": config, "data": data, "run": run, "checkpoint": run_checkpoint(run)}


@pytest.fixture(scope="module")
def test_attributions(trained, tmp_path_factory) -> dict:
    """DeepLIFT/SHAP of 64 test promoters through the command, and the archive it wrote."""
    out = tmp_path_factory.mktemp("attr") / "deeplift"
    cli.main(["attribute", "--run_dir", trained["run"], "--config_path", trained["config"], "--task",
              "FluorescenceData", "--split", "test", "--num_sequences", "64", "--n_shuffles", "8",
              "--output_dir", str(out), "--quiet", "--num_plots", "2"])
    return {"dir": out, "attributions": load_attributions(str(out / "attributions.npz"))}


def test_attributions_concentrate_on_the_planted_sites_that_drive_each_cell(test_attributions):
    attributions = test_attributions["attributions"]
    contributions = np.abs(attributions.contributions())  # (N, O, L)
    for o, cell in enumerate(attributions.outputs):
        drivers = [m for m, (_, effects) in PLANTED_MOTIFS.items() if abs(effects[CELLS.index(cell)]) >= DRIVING_EFFECT]
        inside = planted_site_mask(attributions.codes, drivers)
        has_site = inside.any(axis=1)
        assert has_site.sum() >= 10, cell
        values = contributions[has_site, o]
        ratio = values[inside[has_site]].mean() / values[~inside[has_site]].mean()
        assert ratio >= 3.0, (cell, ratio)


def test_deeplift_is_additive_and_the_archive_round_trips(test_attributions, tmp_path):
    attributions = test_attributions["attributions"]
    assert attributions.method == "deeplift" and attributions.outputs == list(CELLS)
    assert attributions.values.shape == (64, 3, 250, 4) and attributions.ids[0].startswith("test_")
    assert float(attributions.additivity.max()) < 1e-3
    record = json.loads((test_attributions["dir"] / "attribute.json").read_text())
    assert record["summary"]["max_additivity_error"] == pytest.approx(float(attributions.additivity.max()))
    assert (test_attributions["dir"] / "logos.png").stat().st_size > 10_000
    copy = load_attributions(save_attributions(attributions, str(tmp_path / "copy.npz")))
    for name in ("codes", "values", "predictions", "additivity"):
        np.testing.assert_array_equal(getattr(copy, name), getattr(attributions, name))
    assert copy.ids == attributions.ids and copy.outputs == attributions.outputs


def test_additivity_against_independent_predictions(trained):
    """Sum of contributions = prediction - mean prediction of the very references used."""
    from tangermeme.ersatz import dinucleotide_shuffle

    ensemble = Ensemble([trained["checkpoint"]], None)
    codes = np.random.default_rng(3).integers(0, 4, size=(3, 250)).astype(np.uint8)
    options = AttributionOptions(n_shuffles=6, seed=11, progress=False, outputs=("K562",))
    result = attribute(ensemble, codes, ["a", "b", "c"], options)
    x = np.eye(4, dtype=np.float32)[codes]
    import torch

    refs = torch.stack([dinucleotide_shuffle(torch.from_numpy(x[i:i + 1].transpose(0, 2, 1).copy()), n=6,
                                             random_state=11 + i)[0] for i in range(3)])
    ref_codes = refs.argmax(dim=2).numpy().astype(np.uint8).reshape(-1, 250)
    predicted = ensemble.predict(codes)[0, :, 1]
    reference = ensemble.predict(ref_codes)[0, :, 1].reshape(3, 6).mean(axis=1)
    np.testing.assert_allclose(result.contributions()[:, 0].sum(axis=1), predicted - reference, atol=1e-3)
    np.testing.assert_allclose(result.predictions[:, 0], predicted, atol=1e-5)


def test_ism_equals_explicit_mutate_and_predict(trained):
    ensemble = Ensemble([trained["checkpoint"]], None)
    codes = np.random.default_rng(5).integers(0, 4, size=(2, 250)).astype(np.uint8)
    result = attribute(ensemble, codes, ["a", "b"], AttributionOptions(method="ism", progress=False, batch_size=256))
    rng = np.random.default_rng(6)
    picks = [(int(rng.integers(2)), int(rng.integers(250)), int(rng.integers(4))) for _ in range(12)]
    mutants = []
    for row, position, base in picks:
        mutant = codes[row].copy()
        mutant[position] = base
        mutants.append(mutant)
    original = ensemble.predict(codes)[0]
    changed = ensemble.predict(np.stack(mutants))[0]
    for k, (row, position, base) in enumerate(picks):
        np.testing.assert_allclose(result.values[row, :, position, base], changed[k] - original[row], atol=1e-5)
    own = np.take_along_axis(result.values, codes[:, None, :, None].repeat(3, axis=1), axis=-1)
    assert np.all(own == 0)


def test_attribute_refuses_bad_requests(trained, tmp_path):
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(">a\n" + "ACGT" * 62 + "AC\n>b\n" + "ACGT" * 10 + "\n")
    raises(f"{fasta}: record 'b' (line 3) is 40 bp but the model expects 250 bp (1 of 2 sequences differ); "
           "--pad_or_crop centre-crops longer and N-pads shorter sequences",
           _attribute_main,
           ["--checkpoint", trained["checkpoint"], "--input", str(fasta), "--output_dir", str(tmp_path / "o"), "--quiet"])
    raises("head 'Fluorescence' has no output KIDNEY (its outputs: JURKAT, K562, THP1)", _attribute_main,
           ["--checkpoint", trained["checkpoint"], "--input", str(fasta), "--outputs", "KIDNEY",
            "--output_dir", str(tmp_path / "o"), "--quiet"])
    raises("--task 'RNASeq': splits can be read for fluorescence tasks ...", _attribute_main,
           ["--checkpoint", trained["checkpoint"], "--task", "RNASeq", "--config_path", trained["config"],
            "--output_dir", str(tmp_path / "o"), "--quiet"])


def _attribute_main(argv):
    from promoter_modelling.cli.interpret_args import attribute_main

    return attribute_main(argv)


def test_attribute_with_fasta_input_plots_the_chosen_ids_and_keeps_earlier_results(trained, tmp_path):
    rng = np.random.default_rng(9)
    seqs = ["".join(rng.choice(list("ACGT"), 250)) for _ in range(3)]
    fasta = tmp_path / "seqs.fa"
    fasta.write_text("".join(f">p{i}\n{s}\n" for i, s in enumerate(seqs)))
    out = tmp_path / "out"
    argv = ["--checkpoint", trained["checkpoint"], "--input", str(fasta), "--output_dir", str(out), "--quiet",
            "--method", "ism", "--outputs", "THP1", "--plot", "p2"]
    result = _attribute_main(argv)
    assert result.ids == ["p0", "p1", "p2"] and result.outputs == ["THP1"]
    assert json.loads((out / "attribute.json").read_text())["summary"]["plotted"] == ["p2"]
    assert np.isnan(result.additivity).all()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    raises(f"{out}: holds attributions of other options, models or sequences (attribute.json); choose another "
           "--output_dir or pass --overwrite", _attribute_main, argv[:-4] + ["--outputs", "K562"])
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    raises("--plot: no sequence with id 'zz' (ids look like 'p0')", _attribute_main,
           argv[:-2] + ["--plot", "zz", "--overwrite"])
    assert os.path.exists(out / "attributions.npz")


def test_models_without_one_hot_inputs_are_refused_in_one_line():
    from types import SimpleNamespace

    from promoter_modelling.interpret.attribution import check_attributable

    for kind, words in (("tokens", "6-mer tokens"), ("motif_counts", "motif counts")):
        raises(f"m.ckpt: attributions need a model reading one-hot sequences; this one reads {kind} inputs ({words}), "
               "which have no per-base gradient", check_attributable, SimpleNamespace(input_kind=kind, paths=["m.ckpt"]))


DRIVEN = {"RUNX_like": "JURKAT", "GATA_like": "K562", "SPI1_like": "THP1"}


def test_variants_destroying_a_planted_driver_lower_its_cell(trained, tmp_path):
    """SNVs in the middle of a planted RUNX / GATA / SPI1 site of fixture promoters (both strands), scored
    by `promoter-modelling variants` with the trained model: the cell each motif drives goes down."""
    import pandas as pd
    from conftest import read_fasta_text
    from test_variants import HEADER, motif_snv, record

    from promoter_modelling.fixtures.genome import MOTIF_NAMES, SLOTS, ensure_genome

    layout = ensure_genome(str(tmp_path), "hg38", chrom_length=20_000)
    fasta = str(tmp_path / "common" / "hg38.fa")
    genes = layout.genes.reset_index(drop=True)
    world = {"genes": genes, "text": {c: s.upper() for c, s in read_fasta_text(fasta).items()}}
    rows, expected = [], []
    slots = genes[[f"slot{s}" for s in range(SLOTS)]].to_numpy()
    for motif in DRIVEN:
        for strand in (1, -1):  # the first three genes of each strand with the motif planted
            found = np.flatnonzero((genes["strand"].to_numpy() == strand) & (slots == MOTIF_NAMES.index(motif)).any(1))
            for row in found[:3]:
                slot = int(np.flatnonzero(slots[row] == MOTIF_NAMES.index(motif))[0])
                chrom, (pos, ref, alt) = motif_snv(world, int(row), slot)
                rows.append(record(chrom, pos, ref, alt, f"{motif}_{strand}_{row}"))
                expected.append((f"{motif}_{strand}_{row}", f"G{row}", motif))
    vcf = tmp_path / "v.vcf"
    vcf.write_text(HEADER + "".join(r + "\n" for r in rows))
    tss = tmp_path / "tss.tsv"
    pd.DataFrame({"gene": [f"G{i}" for i in range(len(genes))], "chrom": genes["chrom"], "position": genes["tss"],
                  "strand": np.where(genes["strand"] > 0, "+", "-")}).to_csv(tss, sep="\t", index=False)
    out = tmp_path / "effects.tsv"
    cli.main(["variants", "--run_dir", trained["run"], "--vcf", str(vcf), "--fasta", fasta, "--tss_table", str(tss),
              "--output", str(out), "--quiet"])
    table = pd.read_csv(out, sep="\t")
    deltas = {motif: [] for motif in DRIVEN}
    for vid, gene, motif in expected:
        hit = table[(table["id"] == vid) & (table["gene"] == gene) & (table["status"] == "scored")]
        assert set(hit["cell"]) == set(CELLS), vid
        np.testing.assert_allclose(hit["alt_pred"] - hit["ref_pred"], hit["delta"], atol=1e-5)
        deltas[motif].append(hit.set_index("cell")["delta"][list(CELLS)].to_numpy())
    for motif, cell in DRIVEN.items():
        mean = np.mean(deltas[motif], axis=0)  # over the 6 genes
        assert len(deltas[motif]) == 6
        assert mean[CELLS.index(cell)] < -0.05, (motif, mean)
        assert np.argmin(mean) == CELLS.index(cell), (motif, mean)


def test_unknown_bases_are_refused_by_both_methods():
    """An untrained tiny model is enough: what is checked is the refusal of N, which the models read as
    0.25 of each base and tangermeme's one-hot (int8 for ISM) inputs cannot hold."""
    from promoter_modelling.heads import HeadSpec
    from promoter_modelling.lightning_module import MultiTaskModule

    head = HeadSpec(name="Fluorescence", output_names=list(CELLS), kind="regression")
    model = MultiTaskModule(heads=[head.to_dict()], model_name="MTLucifer", model_size="tiny").eval()
    ensemble = Ensemble(["tiny.ckpt"], None, models=[model])
    codes = np.random.default_rng(0).integers(0, 4, size=(3, 250)).astype(np.uint8)
    codes[1, 10:20] = 4
    for method in ("deeplift", "ism"):
        raises("sequence 'b' has N at position 11 (1 sequences have N); attributions are taken on one-hot sequences, "
               "so every base must be known: drop or fill those sequences",
               attribute, ensemble, codes, ["a", "b", "c"], AttributionOptions(method=method, progress=False))


@pytest.mark.skipif(not os.environ.get("PROMOTER_MODELLING_SLOW_TESTS"),
                    reason="explaining every test promoter takes minutes on a CPU; set PROMOTER_MODELLING_SLOW_TESTS=1")
def test_modisco_on_the_test_promoters_recovers_every_planted_driver(trained, tmp_path):
    """Every test promoter explained, TF-MoDISco on the result: each planted motif that drives a cell
    (and REST_like, which lowers all) is matched to its planted matrix with q < 0.05 in that cell."""
    from promoter_modelling.fixtures.motifs import demo_meme_motifs, meme_text

    out = tmp_path / "attr"
    cli.main(["attribute", "--run_dir", trained["run"], "--config_path", trained["config"], "--task",
              "FluorescenceData", "--split", "test", "--n_shuffles", "10", "--output_dir", str(out), "--quiet",
              "--num_plots", "0"])
    meme = tmp_path / "demo.meme"
    meme.write_text(meme_text(demo_meme_motifs()))
    from promoter_modelling.cli.interpret_args import modisco_main

    table = modisco_main(["--attributions", str(out / "attributions.npz"), "--meme_file", str(meme),
                          "--output_dir", str(tmp_path / "modisco")])
    # the planted matrix's q-value for every pattern, whatever its rank: AP1_like ties with JASPAR's
    # many AP-1 family motifs, which share its TGACTCA core
    import h5py

    from promoter_modelling.analysis.motifs import default_meme_file
    from promoter_modelling.interpret.modisco import match_patterns, read_database, trimmed

    database = read_database([default_meme_file(), str(meme)])
    names, ppms = [], []
    with h5py.File(tmp_path / "modisco" / "modisco_results.h5") as handle:
        for cell in handle:
            for kind in handle[cell]:
                for name, pattern in handle[cell][kind].items():
                    names.append((cell, kind, name))
                    ppms.append(trimmed(pattern["sequence"][:], pattern["contrib_scores"][:])[0])
    matches = match_patterns(ppms, database, len(database))
    assert len(names) == len(table)
    for o, cell in enumerate(CELLS):
        for motif, (_, effects) in PLANTED_MOTIFS.items():
            if abs(effects[o]) < DRIVING_EFFECT:
                continue
            kind = "pos_patterns" if effects[o] > 0 else "neg_patterns"
            q = [dict((m, q) for m, _, q in found)[motif] for (c, k, _), found in zip(names, matches)
                 if c == cell and k == kind]
            assert q and min(q) < 0.05, (cell, motif, q)
