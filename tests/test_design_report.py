"""Design reports: FASTA output, motif hit tables and summaries, enrichment and figures, checked
against sequences with known planted motifs."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from promoter_modelling.analysis import plots
from promoter_modelling.analysis.motifs import Motif
from promoter_modelling.design import report
from promoter_modelling.errors import InputError
from promoter_modelling.fixtures.motifs import PLANTED_MOTIFS, demo_meme_motifs, join_rows, meme_text, random_background
from promoter_modelling.predict import read_fasta

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LENGTH = 250
N_DESIGNS, N_BACKGROUND = 12, 30
# planted copies per design: GATA_like in every design (once or twice), RUNX_like in four,
# SPI1_like (twice) in one; two background sequences carry one GATA_like each
DESIGN_PLAN = {
    "GATA_like": [1, 2] * 6,
    "RUNX_like": [1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0],
    "SPI1_like": [0, 0, 2] + [0] * 9,
}
BACKGROUND_PLAN = {"GATA_like": [1, 1] + [0] * (N_BACKGROUND - 2)}
SLOTS = (10, 60, 110, 160)  # planting starts: non-overlapping, at least 40 bp apart


def _plant(rows: np.ndarray, plan: dict[str, list[int]]) -> list[str]:
    chars = rows.copy()
    for i in range(len(chars)):
        slot = iter(SLOTS)
        for name, copies in plan.items():
            site = PLANTED_MOTIFS[name][0]
            for _ in range(copies[i]):
                start = next(slot)
                chars[i, start:start + len(site)] = list(site)
    return join_rows(chars)


def _planted(plan: dict[str, list[int]], n: int) -> pd.DataFrame:
    return pd.DataFrame({name: plan.get(name, [0] * n) for name in demo_meme_motifs()})


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> dict:
    """Hit-free random backgrounds (checked by a scan), planted designs and background, and their counts."""
    meme = str(tmp_path_factory.mktemp("motifs") / "demo.meme")
    with open(meme, "w") as handle:
        handle.write(meme_text(demo_meme_motifs()))
    pool = random_background(np.random.default_rng(7), 120, LENGTH)
    pool_counts, _ = report.motif_hit_table(join_rows(pool), meme)
    clean = pool[pool_counts.to_numpy().sum(axis=1) == 0]
    assert len(clean) >= N_DESIGNS + N_BACKGROUND  # no accidental hit of any motif before planting
    designs = _plant(clean[:N_DESIGNS], DESIGN_PLAN)
    background = _plant(clean[N_DESIGNS:N_DESIGNS + N_BACKGROUND], BACKGROUND_PLAN)
    design_counts, motifs = report.motif_hit_table(designs, meme)
    background_counts, _ = report.motif_hit_table(background, meme)
    return {"meme": meme, "designs": designs, "design_counts": design_counts, "motifs": motifs,
            "background_counts": background_counts, "enrichment": report.motif_enrichment(design_counts, background_counts)}


@pytest.mark.parametrize("which, plan, n", [("design_counts", DESIGN_PLAN, N_DESIGNS),
                                            ("background_counts", BACKGROUND_PLAN, N_BACKGROUND)])
def test_counts_equal_planted_instances(scan, which, plan, n):
    counts = scan[which]
    assert list(counts.columns) == list(demo_meme_motifs()) == [m.label for m in scan["motifs"]]
    pd.testing.assert_frame_equal(counts, _planted(plan, n).astype(np.int32))


@pytest.mark.parametrize("top, expected", [
    (5, ["GATA_like; RUNX_like", "GATA_like x2; RUNX_like", "SPI1_like x2; GATA_like", "GATA_like x2"]),
    (1, ["GATA_like", "GATA_like x2", "SPI1_like x2", "GATA_like x2"]),
])
def test_hit_summary_strings(scan, top, expected):
    summary = report.hit_summary(scan["design_counts"], top=top)
    assert summary[:4] == expected and len(summary) == N_DESIGNS
    assert report.hit_summary(scan["background_counts"])[1:3] == ["GATA_like", ""]


def test_enrichment_ranks_planted_motif_first(scan):
    table, background = scan["enrichment"], scan["background_counts"]
    assert list(table.columns) == list(report.ENRICHMENT_COLUMNS)
    first = table.iloc[0]
    assert first["motif"] == "GATA_like" and first["q_value"] < 0.05 and first["log2_enrichment"] > 0
    planted = np.array(DESIGN_PLAN["GATA_like"])
    assert first["design_fraction"] == pytest.approx(np.mean(planted >= 1))
    assert first["background_fraction"] == pytest.approx(2 / N_BACKGROUND)
    assert first["design_mean_hits"] == pytest.approx(planted.mean())
    assert first["background_mean_hits"] == pytest.approx(2 / N_BACKGROUND)
    contingency = [[N_DESIGNS, 0], [2, N_BACKGROUND - 2]]
    assert first["p_value"] == pytest.approx(scipy.stats.fisher_exact(contingency, alternative="greater")[1])
    assert first["q_value"] == pytest.approx(first["p_value"] * len(table))
    assert (table["p_value"].diff().dropna() >= 0).all()
    assert background.shape[1] == len(table)


@pytest.mark.parametrize("motif", ["AP1_like", "REST_like", "DECOY_1"])
def test_absent_motif_is_not_enriched_nor_drawn(scan, motif, tmp_path, monkeypatch):
    row = scan["enrichment"].set_index("motif").loc[motif]
    assert row["p_value"] == 1.0 and row["q_value"] == 1.0 and row["log2_enrichment"] == 0.0
    drawn: list[list[str]] = []
    original = plots.logo_grid

    def logo_grid(pwms, titles, path, suptitle=None):
        drawn.append(titles)
        return original(pwms, titles, path, suptitle)

    monkeypatch.setattr(plots, "logo_grid", logo_grid)
    path = report.plot_enriched_logos(scan["enrichment"], scan["motifs"], str(tmp_path / "logos.png"))
    assert path is not None and open(path, "rb").read(8) == PNG_MAGIC
    assert [t.split()[0] for t in drawn[0]][0] == "GATA_like"
    assert not any(t.split()[0] == motif for t in drawn[0])


@pytest.mark.parametrize("swap, q_threshold", [(True, 0.05), (False, 0.0)])
def test_no_enriched_motif_draws_nothing(scan, tmp_path, swap, q_threshold):
    enrichment = (report.motif_enrichment(scan["background_counts"], scan["design_counts"]) if swap
                  else scan["enrichment"])
    path = str(tmp_path / "logos.png")
    assert report.plot_enriched_logos(enrichment, scan["motifs"], path, q_threshold=q_threshold) is None
    assert not os.path.exists(path)


@pytest.mark.parametrize("n_designs", [0, 5])
def test_specificity_plot_is_written(tmp_path, n_designs):
    rng = np.random.default_rng(1)
    path = report.plot_specificity(rng.normal(3, 0.3, n_designs), rng.normal(0, 1, 500),
                                   str(tmp_path / "plots" / "spec.png"), target="K562")
    assert open(path, "rb").read(8) == PNG_MAGIC
    assert os.listdir(tmp_path / "plots") == ["spec.png"]


@pytest.mark.parametrize("descriptions", [None, ["pred=1.5 rank=1", "", "x"]])
def test_write_fasta_round_trips(tmp_path, descriptions):
    ids, sequences = ["d1", "d2", "d3"], ["ACGT" * 10, "GGGCCCAATT", "NACGT"]
    path = report.write_fasta(ids, sequences, str(tmp_path / "out" / "designs.fa"), descriptions)
    records = read_fasta(path)
    assert records.ids == ids and records.sequences == sequences
    assert os.listdir(tmp_path / "out") == ["designs.fa"]
    headers = [line for line in open(path).read().splitlines() if line.startswith(">")]
    assert headers == [f">{i} {d}".rstrip() for i, d in zip(ids, descriptions or ["", "", ""])]


@pytest.mark.parametrize("ids, descriptions, problem", [
    (["a", "b c"], None, "FASTA id 'b c' is empty or contains whitespace"),
    (["a", ""], None, "FASTA id '' is empty or contains whitespace"),
    (["a"], None, "1 ids for 2 sequences"),
    (["a", "b"], ["one"], "1 descriptions for 2 sequences"),
    (["a", "b"], ["one", "two\nlines"], "FASTA description 'two\\nlines' spans several lines"),
])
def test_write_fasta_rejects_bad_records(tmp_path, ids, descriptions, problem):
    path = str(tmp_path / "designs.fa")
    with pytest.raises(InputError) as error:
        report.write_fasta(ids, ["ACGT", "TTTT"], path, descriptions)
    assert str(error.value) == f"{path}: {problem}"
    assert not os.path.exists(path)


def test_default_jaspar_hit_table():
    sequences = join_rows(random_background(np.random.default_rng(3), 3, LENGTH))
    counts, motifs = report.motif_hit_table(sequences)
    assert counts.shape == (3, len(motifs)) and len(motifs) > 500
    assert counts.columns.is_unique and list(counts.columns) == report.motif_labels(motifs)
    assert len(report.hit_summary(counts, top=3)) == 3


@pytest.mark.parametrize("motifs, expected", [
    ([Motif("MA1.1", "GATA1", np.eye(4)), Motif("MA2.1", "SPI1 [x]", np.eye(4))], ["MA1.1 GATA1", "MA2.1 SPI1"]),
    ([Motif("A[1]", "", np.eye(4)), Motif("A", "", np.eye(4)), Motif("B", "x", np.eye(4))], ["A[1]", "A", "B x"]),
    ([Motif("A[1]", "", np.eye(4)), Motif("A", "", np.eye(4)), Motif("A[2]", "[y]", np.eye(4))], ["A[1]", "A", "A[2]"]),
])
def test_motif_labels_unique(motifs, expected):
    assert report.motif_labels(motifs) == expected


def test_enrichment_needs_matching_motifs(scan):
    with pytest.raises(InputError, match="different motifs"):
        report.motif_enrichment(scan["design_counts"], scan["background_counts"].drop(columns="DECOY_1"))
