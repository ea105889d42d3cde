"""Every bad input listed in docs/errors.md, and the one-line message it gets."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import raises

from promoter_modelling import cli
from promoter_modelling.checkpoints import (
    import_published_checkpoint,
    load_backbone_weights,
    load_model,
    save_model_checkpoint,
)
from promoter_modelling.lightning_module import MultiTaskModule
from promoter_modelling.predict import PredictOptions, predict_sequences, read_sequences
from promoter_modelling.tasks import fluorescence as fl
from promoter_modelling.tasks.registry import build_task

FLUO = {"name": "Fluorescence", "output_names": ["JURKAT", "K562", "THP1"]}




@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """Small checkpoints of this package: MTLucifer and PureCNN, tiny, one Fluorescence head."""
    root = tmp_path_factory.mktemp("ckpts")
    out = {}
    for name in ("MTLucifer", "PureCNN"):
        torch.manual_seed(0)
        model = MultiTaskModule(heads=[FLUO], model_name=name, model_size="tiny")
        model.sequence_lengths = {"Fluorescence": 250}
        out[name] = save_model_checkpoint(model, str(root / f"{name}.ckpt"))
    sharpr = MultiTaskModule(heads=[{"name": "Sharpr_MPRA", "output_names": ["a"]}], model_size="tiny")
    out["other_heads"] = save_model_checkpoint(sharpr, str(root / "sharpr.ckpt"))
    return out


# --- sequences given to predict ------------------------------------------------------------------

def test_invalid_base(tmp_path, checkpoints):
    path = tmp_path / "s.fa"
    path.write_text(">a\nACGT\n>b\nACXT\n")
    raises(f"{path}: record 'b' (line 3) has invalid character 'X' at position 3 (allowed: A, C, G, T, N)",
           predict_sequences, checkpoints["MTLucifer"], read_sequences(str(path)))


def test_empty_file(tmp_path):
    (tmp_path / "s.fa").write_text("")
    raises(f"{tmp_path / 's.fa'}: file is empty", read_sequences, str(tmp_path / "s.fa"))
    (tmp_path / "blank.fa").write_text("\n\n")
    raises(f"{tmp_path / 'blank.fa'}: file is empty (only blank lines)", read_sequences, str(tmp_path / "blank.fa"))


def test_wrong_columns_and_header_only_tables(tmp_path):
    (tmp_path / "s.csv").write_text("id,seq\na,ACGT\n")
    raises(f"{tmp_path / 's.csv'}: no 'sequence' column (found: id, seq); give a table with a 'sequence' column or "
           "a FASTA file", read_sequences, str(tmp_path / "s.csv"))
    (tmp_path / "h.csv").write_text("id,sequence\n")
    raises(f"{tmp_path / 'h.csv'}: no sequences (the table has only a header)", read_sequences, str(tmp_path / "h.csv"))


def test_empty_sequences(tmp_path):
    (tmp_path / "s.tsv").write_text("id\tsequence\na\tACGT\nb\t\n")
    raises(f"{tmp_path / 's.tsv'}: row 3 ('b') has an empty sequence", read_sequences, str(tmp_path / "s.tsv"))
    (tmp_path / "s.fa").write_text(">a\n>b\nACGT\n")
    raises(f"{tmp_path / 's.fa'}: record 'a' (line 1) has an empty sequence", read_sequences, str(tmp_path / "s.fa"))
    (tmp_path / "n.fa").write_text("ACGT\n>b\nACGT\n")
    raises(f"{tmp_path / 'n.fa'}: line 1: sequence data before the first '>' header", read_sequences,
           str(tmp_path / "n.fa"))


def test_wrong_length(tmp_path, checkpoints):
    path = tmp_path / "s.fa"
    path.write_text(f">a\n{'A' * 250}\n>b\n{'C' * 248}\n")
    raises(f"{path}: record 'b' (line 3) is 248 bp but the model expects 250 bp (1 of 2 sequences differ); "
           "--pad_or_crop centre-crops longer and N-pads shorter sequences",
           predict_sequences, checkpoints["MTLucifer"], read_sequences(str(path)))


def test_predict_exits_with_code_2_and_one_line(tmp_path, checkpoints, capsys):
    (tmp_path / "s.csv").write_text("name,seq\na,ACGT\n")
    with pytest.raises(SystemExit) as info:
        cli.main(["predict", "--checkpoint", checkpoints["MTLucifer"], "--input", str(tmp_path / "s.csv"),
                  "--output", str(tmp_path / "out.csv")])
    assert info.value.code == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 's.csv'}: no 'sequence' column (found: name, seq); "
                                       "give a table with a 'sequence' column or a FASTA file\n")


# --- checkpoints ---------------------------------------------------------------------------------

def test_missing_and_corrupt_checkpoints(tmp_path, checkpoints):
    raises(f"{tmp_path / 'none.ckpt'}: checkpoint not found", load_model, str(tmp_path / "none.ckpt"))
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(open(checkpoints["MTLucifer"], "rb").read()[:5000])
    raises(f"{truncated}: not a readable PyTorch checkpoint, truncated or of another format (...)",
           load_model, str(truncated))
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    raises(f"{tensor}: not a Lightning checkpoint (no state_dict)", load_model, str(tensor))


def test_checkpoint_of_another_architecture(tmp_path, checkpoints):
    mixed = torch.load(checkpoints["PureCNN"], weights_only=False)
    mixed["hyper_parameters"] = torch.load(checkpoints["MTLucifer"], weights_only=False)["hyper_parameters"]
    torch.save(mixed, tmp_path / "mixed.ckpt")
    raises(f"{tmp_path / 'mixed.ckpt'}: weights do not fit the MTLucifer model (size tiny) its hyperparameters "
           "describe: shape mismatch (checkpoint vs model) backbone.promoter_cnn.1.cnn.weight (16, 16, 5) vs "
           "(32, 16, 5), ...; not in the model: backbone.promoter_cnn.3.cnn.weight, ...; missing from the checkpoint: "
           "backbone.cls_token_embedding, ...", load_model, str(tmp_path / "mixed.ckpt"))
    target = MultiTaskModule(heads=[FLUO], model_name="PureCNN", model_size="tiny")
    raises(f"{checkpoints['MTLucifer']}: pretrained backbone does not fit PureCNN (size tiny): shape mismatch "
           "(checkpoint vs model) promoter_cnn.1.cnn.weight (32, 16, 5) vs (16, 16, 5), ...",
           load_backbone_weights, target, checkpoints["MTLucifer"])


def test_published_checkpoint_given_to_predict(tmp_path):
    torch.save({"state_dict": {"model.Backbone.cls_token_embedding": torch.zeros(1, 1, 32)}}, tmp_path / "p.ckpt")
    raises(f"{tmp_path / 'p.ckpt'}: checkpoint has no model hyperparameters; if it was written by the published "
           "code, convert it with `promoter-modelling import-checkpoint` "
           "(promoter_modelling.checkpoints.import_published_checkpoint)",
           predict_sequences, str(tmp_path / "p.ckpt"), ["ACGT"])


def test_mismatched_heads_and_task_names(tmp_path, checkpoints):
    seqs = ["A" * 250]
    raises(f"{checkpoints['MTLucifer']}: the model has no head Sharpr_MPRA (its heads: Fluorescence)",
           predict_sequences, checkpoints["MTLucifer"], seqs, PredictOptions(heads=["Sharpr_MPRA"]))
    raises(f"{checkpoints['other_heads']}: head Fluorescence differs from {checkpoints['MTLucifer']} (an ensemble "
           "needs checkpoints trained on the same tasks)",
           predict_sequences, [checkpoints["MTLucifer"], checkpoints["other_heads"]], seqs)
    backbone = load_model(checkpoints["MTLucifer"]).backbone.state_dict()
    state = {f"model.Backbone.{k}": v for k, v in backbone.items()}
    state.update({"model.Fluorescence.weight": torch.zeros(3, 32), "model.Fluorescence.bias": torch.zeros(3)})
    torch.save({"state_dict": state}, tmp_path / "published.ckpt")
    raises(f"{tmp_path / 'published.ckpt'}: no head Sharpr_MPRA in the checkpoint (its heads: Fluorescence); name the "
           "tasks it was trained on", import_published_checkpoint, str(tmp_path / "published.ckpt"), "MTLucifer",
           "Sharpr_MPRA", "tiny")


# --- training data ------------------------------------------------------------------------------

@pytest.fixture()
def fluorescence_raw(tmp_path) -> dict[str, str]:
    from promoter_modelling.fixtures.fluorescence import generate

    return generate(str(tmp_path), np.random.default_rng(0), num_sequences=60)


def prepare_fluorescence(data_dir) -> None:
    build_task("FluorescenceData", str(data_dir)).prepare()


def raw_paths(tmp_path) -> tuple[str, str]:
    return (str(tmp_path / "FluorescenceData" / fl.COUNTS_FILE), str(tmp_path / "FluorescenceData" / fl.SEQUENCES_FILE))


def test_invalid_bases_in_training_data(tmp_path, fluorescence_raw):
    counts_path, sequences_path = raw_paths(tmp_path)
    counts, table = pd.read_csv(counts_path), pd.read_csv(sequences_path, sep="\t")
    bad = table["sequence"].iloc[0][:10] + "X" + table["sequence"].iloc[0][11:]
    counts.loc[counts["sequence"] == table["sequence"].iloc[0], "sequence"] = bad
    table.loc[0, "sequence"] = bad
    counts.to_csv(counts_path, index=False)
    table.to_csv(sequences_path, sep="\t", index=False)
    raises(f"{sequences_path}: row 2 has invalid character 'X' at position 10 (allowed: A, C, G, T, N)",
           prepare_fluorescence, tmp_path)


def test_empty_raw_file_and_wrong_columns(tmp_path, fluorescence_raw):
    counts_path, _ = raw_paths(tmp_path)
    original = pd.read_csv(counts_path)
    original.drop(columns=["J1_P4"]).to_csv(counts_path, index=False)
    raises(f"{counts_path}: missing column(s) J1_P4 (found: sequence, J1_P7, ...)", prepare_fluorescence, tmp_path)
    open(counts_path, "w").close()
    raises(f"{counts_path}: file is empty", prepare_fluorescence, tmp_path)


def test_nan_targets(tmp_path, fluorescence_raw):
    counts_path, _ = raw_paths(tmp_path)
    counts = pd.read_csv(counts_path)
    counts.loc[3, "K1_P7"] = np.nan
    counts.to_csv(counts_path, index=False)
    raises(f"{counts_path}: row 5, column K1_P7: count 'nan' is not a non-negative number", prepare_fluorescence,
           tmp_path)


def test_nan_targets_and_truncated_hdf5_in_sharpr(tmp_path):
    import h5py

    from promoter_modelling.fixtures.sharpr import generate

    paths = generate(str(tmp_path), np.random.default_rng(0), num_train=20, num_val=10, num_test=10)
    with h5py.File(paths["test"], "r+") as handle:
        handle["Y"]["output"][2, 4] = np.nan
    raises(f"{paths['test']}: Y/output row 2 has a missing or infinite value",
           lambda: build_task("Sharpr_MPRA", str(tmp_path)).prepare())
    size = os.path.getsize(paths["train"])
    with open(paths["train"], "r+b") as handle:
        handle.truncate(size // 2)
    raises(f"{paths['train']}: cannot be opened as HDF5 (Unable to synchronously open file (truncated file: ...))",
           lambda: build_task("Sharpr_MPRA", str(tmp_path)).prepare())


def test_corrupt_cache_npy(tmp_path, fluorescence_raw):
    prepare_fluorescence(tmp_path)
    cached = tmp_path / "FluorescenceData" / "train_seqs.npy"
    cached.write_bytes(b"\x93NUMPY garbage")
    raises(f"{cached}: cached array is unreadable (...); delete it to rebuild the cache", prepare_fluorescence, tmp_path)


# --- training flags -------------------------------------------------------------------------------

def test_unknown_task_metric_and_config(tmp_path, fluorescence_raw):
    from promoter_modelling.strategies import run_strategy

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"root_dir": str(tmp_path / "results"), "root_data_dir": str(tmp_path)}))
    base = ["--config_path", str(config), "--modelling_strategy", "single_task", "--model_size", "tiny"]
    raises("unknown task 'FluorescenceDat'; known tasks: CCLE, ...", run_strategy,
           cli.parse_train_args(base + ["--single_task", "FluorescenceDat"]))
    raises("metric 'val_Sharpr_MPRA_mean_SpearmanR' is not reported by tasks ['FluorescenceData']; choose one of: "
           "overall_val_loss, val_Fluorescence_avg_epoch_loss, ...", run_strategy,
           cli.parse_train_args(base + ["--single_task", "FluorescenceData", "--metric_to_monitor",
                                        "val_Sharpr_MPRA_mean_SpearmanR"]))
    missing = tmp_path / "missing.json"
    raises(f"{missing}: config file not found (expected JSON with root_dir and root_data_dir)", run_strategy,
           cli.parse_train_args(["--config_path", str(missing), "--modelling_strategy", "single_task",
                                 "--single_task", "FluorescenceData"]))
