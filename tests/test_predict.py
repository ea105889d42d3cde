"""`promoter-modelling predict`: predictions equal the trained model's test predictions, for
FASTA and CSV/TSV inputs; ensembles average; wrong lengths are refused or padded/cropped."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import train_fluorescence_seeds

from promoter_modelling import cli
from promoter_modelling.errors import InputError
from promoter_modelling.predict import PredictOptions, predict_sequences, read_sequences

RUN = "PureCNN_individual_training_on_FluorescenceData_tiny"
PRED = ["pred_JURKAT", "pred_K562", "pred_THP1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fluorescence_data_dir) -> dict:
    """Two seeds of a tiny PureCNN trained for one epoch on generated fluorescence data."""
    root = tmp_path_factory.mktemp("predict")
    train_fluorescence_seeds(root, fluorescence_data_dir, ["--model_name", "PureCNN", "--model_size", "tiny"])
    out = {"root": root}
    for seed in (0, 1):
        directory = root / "results" / "saved_models" / f"{RUN}_seed_{seed}" / "default"
        done = json.loads((directory / "done.txt").read_text())
        out[seed] = {"checkpoint": done["best_checkpoint"],
                     "test": pd.read_csv(directory / "test_predictions_Fluorescence.csv")}
    return out


def write_fasta(path, ids, sequences, width: int = 60) -> str:
    with open(path, "w") as handle:
        for name, seq in zip(ids, sequences):
            handle.write(f">{name} some description\n")
            for start in range(0, len(seq), width):
                handle.write(seq[start:start + width] + "\n")
    return str(path)


def run_predict(*args: str) -> None:
    cli.main(["predict", *args, "--quiet"])


def test_fasta_predictions_equal_the_test_predictions(trained, tmp_path):
    test = trained[0]["test"]
    ids = [f"promoter_{i}" for i in range(len(test))]
    fasta = write_fasta(tmp_path / "seqs.fa", ids, test["sequence"])
    out = tmp_path / "preds.csv"
    run_predict("--checkpoint", trained[0]["checkpoint"], "--input", fasta, "--output", str(out), "--batch_size", "7")
    preds = pd.read_csv(out)
    assert list(preds.columns) == ["id", "sequence", *PRED]
    assert preds["id"].tolist() == ids
    assert preds["sequence"].tolist() == test["sequence"].tolist()
    np.testing.assert_allclose(preds[PRED].to_numpy(), test[PRED].to_numpy(), atol=1e-5)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_csv_and_tsv_inputs_keep_the_id_column_and_agree_with_fasta(trained, tmp_path):
    test = trained[0]["test"]
    table = pd.DataFrame({"name": [f"p{i}" for i in range(len(test))], "other": 1, "Sequence": test["sequence"]})
    table.to_csv(tmp_path / "seqs.csv", index=False)
    table.to_csv(tmp_path / "seqs.tsv", sep="\t", index=False)
    for name in ("seqs.csv", "seqs.tsv"):
        run_predict("--checkpoint", trained[0]["checkpoint"], "--input", str(tmp_path / name),
                    "--output", str(tmp_path / f"{name}.out.csv"))
        preds = pd.read_csv(tmp_path / f"{name}.out.csv")
        assert list(preds.columns) == ["name", "sequence", *PRED]
        assert preds["name"].tolist() == table["name"].tolist()
        np.testing.assert_allclose(preds[PRED].to_numpy(), test[PRED].to_numpy(), atol=1e-5)


def test_ensemble_is_the_mean_of_single_checkpoint_predictions(trained, tmp_path):
    sequences = trained[0]["test"]["sequence"].tolist()[:40]
    single = [predict_sequences(trained[s]["checkpoint"], sequences)[PRED].to_numpy() for s in (0, 1)]
    assert not np.allclose(single[0], single[1])  # two different models
    path = write_fasta(tmp_path / "seqs.fa", [f"s{i}" for i in range(40)], sequences)
    out = tmp_path / "ensemble.csv"
    run_predict("--checkpoint", trained[0]["checkpoint"], trained[1]["checkpoint"], "--input", path,
                "--output", str(out))
    np.testing.assert_allclose(pd.read_csv(out)[PRED].to_numpy(), (single[0] + single[1]) / 2, atol=1e-6)
    repeated = tmp_path / "repeated.csv"  # the flag may also be repeated
    run_predict("--checkpoint", trained[0]["checkpoint"], "--checkpoint", trained[1]["checkpoint"],
                "--input", path, "--output", str(repeated))
    np.testing.assert_allclose(pd.read_csv(repeated)[PRED].to_numpy(), (single[0] + single[1]) / 2, atol=1e-6)


def test_wrong_length_is_refused_naming_the_record(trained, tmp_path, capsys):
    seqs = trained[0]["test"]["sequence"].tolist()[:3]
    seqs[1] = seqs[1][:248]
    path = write_fasta(tmp_path / "seqs.fa", ["a", "b", "c"], seqs)
    with pytest.raises(SystemExit) as exit_info:
        run_predict("--checkpoint", trained[0]["checkpoint"], "--input", path, "--output", str(tmp_path / "o.csv"))
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message == (f"error: {path}: record 'b' (line 7) is 248 bp but the model expects 250 bp (1 of 3 sequences "
                       "differ); --pad_or_crop centre-crops longer and N-pads shorter sequences")
    assert not (tmp_path / "o.csv").exists()


def test_pad_or_crop_centre_crops_and_n_pads(trained):
    seq = trained[0]["test"]["sequence"].iloc[0]
    checkpoint = trained[0]["checkpoint"]
    longer = "ACGTACGTAC" + seq + "TTTTTTTTTTT"  # 10 + 250 + 11: the centre 250 bp start at index 10
    shorter = seq[:247]  # padded to N + 247 bp + NN
    frame = predict_sequences(checkpoint, [seq, longer, shorter], PredictOptions(pad_or_crop=True))
    assert frame["length_adjustment"].tolist() == ["", "cropped", "padded"]
    assert frame["sequence"].tolist() == [seq, longer, shorter]  # the inputs as given
    np.testing.assert_allclose(frame.loc[1, PRED].to_numpy(float), frame.loc[0, PRED].to_numpy(float), atol=1e-6)
    padded = predict_sequences(checkpoint, ["N" + shorter + "NN"])
    np.testing.assert_allclose(frame.loc[2, PRED].to_numpy(float), padded.loc[0, PRED].to_numpy(float), atol=1e-6)


def test_read_sequences_fasta_and_gzip(tmp_path):
    import gzip

    text = ">x first\nACGT\nacgt\n\n>y\nNNNN\n"
    (tmp_path / "a.fa").write_text(text)
    with gzip.open(tmp_path / "a.fa.gz", "wt") as handle:
        handle.write(text)
    for name in ("a.fa", "a.fa.gz"):
        records = read_sequences(str(tmp_path / name))
        assert records.ids == ["x", "y"] and records.sequences == ["ACGTacgt", "NNNN"]


def test_unknown_head_is_refused(trained):
    with pytest.raises(InputError, match=r"the model has no head Sharpr_MPRA \(its heads: Fluorescence\)"):
        predict_sequences(trained[0]["checkpoint"], ["A" * 250], PredictOptions(heads=["Sharpr_MPRA"]))
