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


def synthetic_result(n: int = 300) -> insertion.InsertionResult:
    rng = np.random.default_rng(0)
    names = list(TRUE_EFFECTS)
    pwm = np.full((6, 4), 0.25)
    effects = np.stack([np.asarray(TRUE_EFFECTS[m]) + rng.normal(0, 0.3, size=(n, 3)) for m in names])
    return insertion.InsertionResult([Motif(m, "", pwm) for m in names], CELLS,
                                     rng.normal(size=(1, n, 3)), effects.astype(np.float32), effects.mean(axis=1)[:, None])


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
