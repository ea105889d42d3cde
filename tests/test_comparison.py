"""compare-models: one command trains each named backbone on the same fluorescence data (a
feature extractor by simple regression) and writes model_comparison.csv/png with a row each."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from promoter_modelling.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


def test_compare_models_command_adds_every_model_to_the_comparison(tmp_path, capsys):
    out = tmp_path / "comparison"
    argv = ["compare-models", "--output_dir", str(out), "--models", "MPRAnn,Malinois,EnformerFullFrozenBase",
            "--model_size", "tiny", "--max_epochs", "1", "--num_sequences", "400"]
    main(argv)
    printed = capsys.readouterr().out
    summaries = out / "results" / "summaries"
    table = pd.read_csv(summaries / "model_comparison.csv")
    assert set(table["model_name"]) == {"MPRAnn", "Malinois", "EnformerFullFrozenBase"}
    strategies = dict(zip(table["model_name"], table["modelling_strategy"]))
    assert strategies == {"MPRAnn": "single_task", "Malinois": "single_task",
                          "EnformerFullFrozenBase": "single_task_simple_regression"}
    assert table["mean_avg_PearsonR"].notna().all()
    assert os.path.getsize(summaries / "model_comparison.png") > 0
    assert "MODEL COMPARISON" in printed and "EnformerFullFrozenBase" in printed.split("MODEL COMPARISON")[1]

    # a second call reuses every finished run
    main(argv)
    assert printed.count("finished earlier") == 0 and capsys.readouterr().out.count("finished earlier: reusing") == 3


def test_compare_models_refuses_unknown_models(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare-models", "--output_dir", str(tmp_path), "--models", "MTLucifer,Basset"])
    assert exit_info.value.code == 2
    assert "unknown model(s) Basset; known models: MTLucifer" in capsys.readouterr().err
