"""Motifs attended to: summaries, common and cell-specific motifs, and the comparison with the
published dFE table, on a synthetic insertion result with a known answer."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from promoter_modelling.analysis import attended, insertion
from promoter_modelling.analysis.motifs import Motif, meme_text
from promoter_modelling.cli.analysis_args import attended_main
from promoter_modelling.io_utils import save_json, save_table

CELLS = ["JURKAT", "K562", "THP1"]
# mean effect per cell of each synthetic motif
TRUE_EFFECTS = {
    "UP_ALL": (1.0, 1.1, 0.9),
    "UP_J": (1.5, 0.0, 0.1),
    "UP_K": (0.0, 1.4, 0.0),
    "DOWN_ALL": (-1.0, -1.2, -0.9),
    "DOWN_T": (0.0, 0.1, -1.3),
    "NULL_1": (0.0, 0.0, 0.0),
    "HOMER_X": (2.0, 2.0, 2.0),
}


def synthetic_result(n: int = 300, shuffles: int = 5) -> insertion.InsertionResult:
    """Per-promoter effects around TRUE_EFFECTS, and shuffled-motif nulls around 0 (sd 0.05)."""
    rng = np.random.default_rng(0)
    names = list(TRUE_EFFECTS)
    pwm = np.full((6, 4), 0.25)
    effects = np.stack([np.asarray(TRUE_EFFECTS[m]) + rng.normal(0, 0.3, size=(n, 3)) for m in names])
    null_means = rng.normal(0, 0.05, size=(len(names), 1, shuffles, 3))
    null_effects = null_means.mean(axis=2) + rng.normal(0, 0.3, size=(len(names), n, 3))
    return insertion.InsertionResult([Motif(m, "", pwm) for m in names], CELLS, rng.normal(size=(1, n, 3)),
                                     effects.astype(np.float32), effects.mean(axis=1)[:, None],
                                     null_effects.astype(np.float32), null_means)


@pytest.fixture()
def analysed(tmp_path) -> dict:
    """Files of an insertion analysis of `individual_training_on_FluorescenceData_tiny`, plus a
    config whose common directory holds published-style occurrence and t-test tables."""
    result = synthetic_result()
    n = result.effects.shape[1]
    root, data = tmp_path / "results", tmp_path / "data"
    prefix = os.path.join(root, insertion.ANALYSIS_DIR, "individual_training_on_FluorescenceData_tiny")
    os.makedirs(os.path.dirname(prefix))
    os.makedirs(data / "common")
    save_table(insertion.summarise(result), f"{prefix}_motif_effects.tsv")
    sequences = [f"SEQ{i}" for i in range(n)]
    save_table(pd.DataFrame({"sequence_index": np.arange(n), "sequence": sequences}), f"{prefix}_sequences.tsv")
    per_sequence = insertion.write_per_sequence(result, f"{prefix}_per_sequence_effects", "parquet")
    meme = tmp_path / "motifs.meme"
    meme.write_text(meme_text(result.motifs))
    save_json({"parameters": {"meme_file": str(meme)},
               "outputs": {"per_sequence_path": per_sequence, "sequences_path": f"{prefix}_sequences.tsv"}},
              f"{prefix}_motif_insertion.json")
    # UP_J occurs in the first 100 promoters only; the others never.
    occurrences = pd.DataFrame({"sequence": sequences, "UP_J": (np.arange(n) < 100).astype(int),
                                "UP_K": 0, "NULL_1": 0})
    occurrences.to_csv(data / "common" / "motif_occurrences.tsv", sep="\t", index=False)
    ttest = pd.DataFrame({"Motif": list(TRUE_EFFECTS)})
    for c, cell in enumerate(CELLS):
        ttest[f"{cell[0]}_dFE"] = [TRUE_EFFECTS[m][c] + 0.01 * i for i, m in enumerate(TRUE_EFFECTS)]
        ttest[f"{cell[0]}_q_val"] = 0.01
    ttest.to_csv(data / "common" / "ttest_results.csv", index=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"root_dir": str(root), "root_data_dir": str(data)}))
    return {"config": str(config), "prefix": prefix, "result": result}


def run(analysed: dict, *extra: str) -> dict:
    return attended_main(["--modelling_strategy", "single_task", "--single_task", "FluorescenceData",
                          "--config_path", analysed["config"], "--model_size", "tiny", "--top_n_motifs_to_print", "2",
                          "--skip_download", *extra])


def test_summary_tops_common_and_cell_specific(analysed, capsys):
    out = run(analysed)
    summary = out["summary"]
    assert "HOMER_X" not in set(summary["motif"])  # dropped, as published
    assert out["top"]["JURKAT"]["up"] == ["UP_J", "UP_ALL"]
    assert out["top"]["K562"]["up"] == ["UP_K", "UP_ALL"]
    assert out["top"]["THP1"]["down"] == ["DOWN_T", "DOWN_ALL"]
    assert out["common_up"] == ["UP_ALL"]
    assert out["common_down"] == ["DOWN_ALL"]
    specific = out["cell_specific"]
    first = specific[specific["rank"] == 1].set_index(["cell", "direction"])["motif"]
    assert first[("JURKAT", "up")] == "UP_J" and first[("K562", "up")] == "UP_K"
    assert first[("THP1", "down")] == "DOWN_T"
    for path in (out["common_upreg_logos"], out["JURKAT_upreg_logos"], out["summary_path"], out["cell_specific_path"]):
        assert os.path.getsize(path) > 0
    # published-style t-test table present: the dFE comparison runs; dFE = truth, so rho is high
    correlations = out["dfe_correlations"]
    assert set(correlations["cell"]) == set(CELLS)
    assert (correlations["spearman_rho"] > 0.8).all()
    assert os.path.exists(f"{analysed['prefix']}_motif_influence_vs_dFE.png")


def test_lists_hold_only_significant_motifs_of_their_sign(analysed, capsys):
    """With more motifs to print than there are, a list still holds only the motifs that regulate
    the cell in its direction (significant against their shuffles, with that sign): nothing is
    both up and down, a motif without effect is in no list."""
    out = run(analysed, "--top_n_motifs_to_print", "50")
    summary = out["summary"].set_index("motif")
    assert out["top"]["JURKAT"] == {"up": ["UP_J", "UP_ALL"], "down": ["DOWN_ALL"]}
    assert out["top"]["K562"] == {"up": ["UP_K", "UP_ALL"], "down": ["DOWN_ALL"]}
    assert out["top"]["THP1"] == {"up": ["UP_ALL"], "down": ["DOWN_T", "DOWN_ALL"]}
    assert out["common_up"] == ["UP_ALL"] and out["common_down"] == ["DOWN_ALL"]
    for cell in CELLS:
        assert not set(out["top"][cell]["up"]) & set(out["top"][cell]["down"])
        for motif in out["top"][cell]["up"]:
            assert summary.loc[motif, f"{cell}_avg_pred"] > 0 and summary.loc[motif, f"{cell}_effect_vs_null"] > 0
            assert summary.loc[motif, f"{cell}_q_value_vs_null"] < 0.05
    specific = out["cell_specific"]
    assert "NULL_1" not in set(specific["motif"])
    assert (specific.loc[specific["direction"] == "up", "avg_pred"] > 0).all()
    assert (specific.loc[specific["direction"] == "down", "avg_pred"] < 0).all()
    first = specific[specific["rank"] == 1].set_index(["cell", "direction"])["motif"]
    assert first[("JURKAT", "up")] == "UP_J" and first[("THP1", "down")] == "DOWN_T"
    assert set(specific.loc[(specific["cell"] == "JURKAT") & (specific["direction"] == "up"), "motif"]) == {
        "UP_J", "UP_ALL"}
    text = capsys.readouterr().out
    assert "Top 2 of 2 up-regulating motifs: UP_J, UP_ALL" in text
    assert "Top down-regulating motifs specific to K562" in text


def test_stale_logos_of_empty_lists_are_removed(analysed, capsys):
    """A figure left by an earlier run would show motifs the lists no longer hold."""
    first = run(analysed)
    assert os.path.getsize(first["common_downreg_logos"]) > 0 and os.path.getsize(first["THP1_downreg_logos"]) > 0
    path = f"{analysed['prefix']}_motif_effects.tsv"
    effects = pd.read_csv(path, sep="\t")
    effects.loc[effects["regulation"] == "down", "regulation"] = "none"  # now nothing down-regulates
    save_table(effects, path)
    again = run(analysed)
    assert again["common_down"] == [] and again["common_downreg_logos"] is None
    assert not os.path.exists(first["common_downreg_logos"]) and not os.path.exists(first["THP1_downreg_logos"])
    assert "Down-regulating motifs common to all cells: none" in capsys.readouterr().out
    assert os.path.getsize(again["common_upreg_logos"]) > 0


def test_results_without_a_null_fall_back_to_the_raw_q_value(analysed, capsys):
    """Insertion results written before the shuffled-motif null: calls follow the raw q-value and
    the sign of the effect (with a notice), and still never list a motif in both directions."""
    path = f"{analysed['prefix']}_motif_effects.tsv"
    effects = pd.read_csv(path, sep="\t")
    old_columns = ["motif", "alt_name", "label", "width", "cell", "n_sequences", "mean_effect", "median_effect",
                   "std_effect", "sem_effect", "t_statistic", "p_value", "q_value", "rank_up", "rank_down"]
    save_table(effects[old_columns], path)
    out = run(analysed, "--top_n_motifs_to_print", "50")
    assert "have no shuffled-motif null" in capsys.readouterr().out
    for cell in CELLS:
        assert not set(out["top"][cell]["up"]) & set(out["top"][cell]["down"])
    assert "NULL_1" not in out["top"]["JURKAT"]["up"] + out["top"]["JURKAT"]["down"]
    assert "UP_ALL" in out["common_up"] and out["common_down"] == ["DOWN_ALL"]


def test_effects_without_the_motif(analysed):
    summary = run(analysed)["summary"].set_index("motif")
    assert summary.loc["UP_J", "num_seqs_without_motif"] == 200
    assert summary.loc["UP_K", "num_seqs_without_motif"] == 300
    effects = analysed["result"].effects
    np.testing.assert_allclose(summary.loc["UP_J", "JURKAT_avg_pred_without_motif"], effects[1, 100:, 0].mean(),
                               rtol=1e-5)
    assert np.isnan(summary.loc["DOWN_T", "num_seqs_without_motif"])  # not in the occurrence table


def test_missing_published_tables_are_skipped_with_a_notice(analysed, capsys):
    data = json.load(open(analysed["config"]))["root_data_dir"]
    os.remove(os.path.join(data, "common", "ttest_results.csv"))
    out = run(analysed)
    assert "dfe_correlations" not in out
    assert "comparison with measured dFE is skipped" in capsys.readouterr().out


def test_missing_insertion_results_are_a_clear_error(analysed):
    from promoter_modelling.errors import InputError

    with pytest.raises(InputError, match=r"individual_training_on_FluorescenceData_motif_effects.tsv not found"):
        attended_main(["--modelling_strategy", "single_task", "--single_task", "FluorescenceData",
                       "--config_path", analysed["config"], "--skip_download"])


def test_options_are_checked_with_one_line_errors(analysed):
    from promoter_modelling.errors import InputError

    with pytest.raises(InputError, match=r"--top_n_motifs_to_print must be at least 1, got 0"):
        attended.AttendedOptions(top_n_motifs_to_print=0)
    with pytest.raises(InputError, match=r"--top_n_motifs_to_print must be at least 1"):
        run(analysed, "--top_n_motifs_to_print", "0")  # the flag given last wins
