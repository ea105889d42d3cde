"""`promoter-modelling modisco` on attributions whose answer is known: contributions placed on planted
motif copies are clustered into patterns that tomtom matches to the planted matrices; q-values,
trimming, the report files and refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import raises

from promoter_modelling.analysis.motifs import default_meme_file
from promoter_modelling.fixtures.motifs import (
    PLANTED_MOTIFS,
    demo_meme_motifs,
    meme_text,
    plant,
    planted_site_mask,
    random_background,
)
from promoter_modelling.interpret.attribution import Attributions
from promoter_modelling.interpret.modisco import ModiscoOptions, bh_qvalues, trimmed
from promoter_modelling.interpret.store import save_attributions

PLANTED = ("RUNX_like", "GATA_like")


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> dict:
    """300 promoters with planted RUNX_like / GATA_like copies; hypothetical contributions are 1 on the
    planted bases and small noise elsewhere; TF-MoDISco and matching run once through the command."""
    rng = np.random.default_rng(0)
    chars = random_background(rng, 300, 250)
    plant(rng, chars, max_per_seq=2, motifs={name: PLANTED_MOTIFS[name] for name in PLANTED})
    codes = np.searchsorted(np.array(list("ACGT")), chars).astype(np.uint8)
    one_hot = np.eye(4, dtype=np.float32)[codes]
    values = rng.normal(0, 0.02, size=one_hot.shape) + one_hot * planted_site_mask(codes, PLANTED)[..., None]
    attributions = Attributions("deeplift", "Fluorescence", ["JURKAT"], [f"s{i}" for i in range(300)], codes,
                                values[:, None].astype(np.float32), np.zeros((300, 1), np.float32),
                                np.zeros((300, 1), np.float32))
    root = tmp_path_factory.mktemp("modisco")
    path = save_attributions(attributions, str(root / "attributions.npz"))
    meme = root / "demo.meme"
    meme.write_text(meme_text(demo_meme_motifs()))
    from promoter_modelling.cli.interpret_args import modisco_main

    out = root / "report"
    table = modisco_main(["--attributions", path, "--meme_file", str(meme), "--output_dir", str(out)])
    return {"table": table, "out": out, "path": path, "meme": str(meme)}


def test_every_planted_motif_is_recovered_and_matched_to_its_matrix(known):
    table = known["table"]
    positive = table[table["pattern"].str.startswith("pos_")]
    for name in PLANTED:
        matched = positive[positive["match_1"] == name]
        assert len(matched) >= 1, table[["pattern", "match_1", "qvalue_1"]]
        assert matched["qvalue_1"].min() < 0.05
        assert matched["seqlets"].max() >= 50
    assert not positive["match_1"].str.startswith("DECOY").any()


def test_report_files_agree_with_the_table(known):
    out, table = known["out"], known["table"]
    written = pd.read_csv(out / "patterns.tsv", sep="\t")
    assert written["pattern"].tolist() == table["pattern"].tolist()
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for row in table.itertuples():
        assert (out / row.logo).stat().st_size > 1000
        assert row.logo in markdown and row.logo in page
    import h5py

    with h5py.File(out / "modisco_results.h5") as handle:
        assert len(handle["JURKAT"]["pos_patterns"]) == (table["pattern"].str.startswith("pos_")).sum()
    assert json.loads((out / "modisco.json").read_text())["patterns"] == len(table)


def test_qvalues_are_benjamini_hochberg_per_pattern():
    from scipy.stats import false_discovery_control

    p = np.random.default_rng(1).random((4, 30)) ** 3
    np.testing.assert_allclose(bh_qvalues(p), np.stack([false_discovery_control(row) for row in p]), rtol=1e-12)


def test_trimming_keeps_the_span_of_strong_positions():
    cwm = np.zeros((10, 4))
    cwm[2, 0], cwm[5, 1], cwm[6, 2], cwm[9, 3] = 0.35, 1.0, -0.8, 0.1
    ppm = np.arange(40.0).reshape(10, 4)
    kept_ppm, kept_cwm = trimmed(ppm, cwm)
    np.testing.assert_array_equal(kept_ppm, ppm[2:7])
    np.testing.assert_array_equal(kept_cwm, cwm[2:7])


def test_modisco_refusals(known, tmp_path):
    from promoter_modelling.cli.interpret_args import modisco_main

    raises("--output KIDNEY: not among the attributions' outputs (JURKAT)", modisco_main,
           ["--attributions", known["path"], "--output", "KIDNEY", "--output_dir", str(tmp_path / "a")])
    raises(f"{known['out']}: holds a TF-MoDISco report of other options (modisco.json); choose another --output_dir "
           "or pass --overwrite", modisco_main,
           ["--attributions", known["path"], "--output_dir", str(known["out"]), "--flank", "3"])
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an archive")
    raises(f"{bad}: not an attributions file of promoter-modelling attribute (...)", modisco_main,
           ["--attributions", str(bad), "--output_dir", str(tmp_path / "b")])
    raises(f"{tmp_path / 'none.meme'}: MEME motif file not found (--meme_file)", modisco_main,
           ["--attributions", known["path"], "--meme_file", str(tmp_path / "none.meme"), "--output_dir",
            str(tmp_path / "c")])
    raises(f"{known['meme']}: motif 'RUNX_like' is also in an earlier motif file (the bundled JASPAR file comes first; "
           "--no_jaspar leaves it out); names must be unique",
           modisco_main, ["--attributions", known["path"], "--meme_file", known["meme"], known["meme"],
                          "--output_dir", str(tmp_path / "d")])
    raises("--window 10 is shorter than a seqlet (15 + 2 x 5 flank)", ModiscoOptions, window=10)
    raises("--no_jaspar leaves no motifs to match; give --meme_file", modisco_main,
           ["--attributions", known["path"], "--no_jaspar", "--output_dir", str(tmp_path / "e")])
    raises(f"{default_meme_file()}: motif 'MA0002.3' is also in an earlier motif file (the bundled JASPAR file comes "
           "first; --no_jaspar leaves it out); names must be unique", modisco_main,
           ["--attributions", known["path"], "--meme_file", default_meme_file(), "--output_dir", str(tmp_path / "f")])


def test_planted_site_mask_marks_every_base_of_each_consensus_copy():
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 4, size=(40, 60)).astype(np.uint8)
    runx = np.array(["ACGT".index(b) for b in PLANTED_MOTIFS["RUNX_like"][0]], dtype=np.uint8)
    codes[::3, 5:14] = runx
    codes[::4, 10:19] = runx  # overlapping copies
    expected = np.zeros(codes.shape, dtype=bool)
    for i, row in enumerate(codes):
        text = "".join("ACGT"[c] for c in row)
        start = text.find(PLANTED_MOTIFS["RUNX_like"][0])
        while start >= 0:
            expected[i, start:start + 9] = True
            start = text.find(PLANTED_MOTIFS["RUNX_like"][0], start + 1)
    np.testing.assert_array_equal(planted_site_mask(codes, ["RUNX_like"]), expected)
    assert expected.sum() >= 9 * 14
