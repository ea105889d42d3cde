"""Input checks: absurd fluorescence counts, duplicate promoters, Sharpr files of different
lengths, file permissions and stale temporaries of the atomic writer, and `predict` paths,
formats, byte-order marks, duplicate ids and devices. Every message is asserted in full."""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import raises

from promoter_modelling import cli, download, io_utils
from promoter_modelling.checkpoints import AtomicCheckpointIO, save_model_checkpoint
from promoter_modelling.fixtures import fluorescence as fluorescence_fixture
from promoter_modelling.fixtures import sharpr as sharpr_fixture
from promoter_modelling.lightning_module import MultiTaskModule
from promoter_modelling.predict import read_sequences, write_predictions
from promoter_modelling.tasks import fluorescence as fl
from promoter_modelling.tasks import sharpr
from promoter_modelling.tasks.base import MANIFEST
from promoter_modelling.tasks.registry import build_task

FLUO = {"name": "Fluorescence", "output_names": ["JURKAT", "K562", "THP1"]}
PRED = ["pred_JURKAT", "pred_K562", "pred_THP1"]




def cli_error(capsys, *argv: str) -> str:
    """Run `promoter-modelling <argv>`; it must exit with code 2 and one `error: ...` line."""
    with pytest.raises(SystemExit) as info:
        cli.main(list(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err[len("error: "):].rstrip("\n")


# --- FluorescenceData: counts -------------------------------------------------------------------

@pytest.fixture
def fluo_raw(tmp_path):
    """A data root with 80 generated promoters; returns (root, counts path, sequences path)."""
    paths = fluorescence_fixture.generate(str(tmp_path), np.random.default_rng(0), num_sequences=80,
                                          low_read_fraction=0.0)
    return str(tmp_path), paths["counts"], paths["sequences"]


def set_cell(path: str, row: int, column: str, text: str) -> None:
    """Write `text` verbatim into a cell of the counts CSV (row counts data rows from 0)."""
    table = pd.read_csv(path, dtype=str)
    table.loc[row, column] = text
    table.to_csv(path, index=False)


@pytest.mark.parametrize("text, problem", [
    ("inf", "is not a finite number"),
    ("1e308", "is above 1e+12 reads (corrupt or not a read count?)"),
    ("2e12", "is above 1e+12 reads (corrupt or not a read count?)"),
    ("-inf", "is not a non-negative number"),
])
def test_non_finite_or_absurd_counts_are_refused(fluo_raw, text, problem):
    root, counts, _ = fluo_raw
    set_cell(counts, 2, "K1_P7", text)
    raises(f"{counts}: row 4, column K1_P7: count {text!r} {problem}", fl.read_counts, counts)
    task = build_task("FluorescenceData", root)
    raises(f"{counts}: row 4, column K1_P7: count {text!r} {problem}", task.prepare)
    assert not os.path.exists(os.path.join(task.cache_dir, "merged.tsv"))


def test_fractional_and_large_plausible_counts_are_accepted(fluo_raw):
    _, counts, _ = fluo_raw
    set_cell(counts, 0, "J1_P4", "12.5")
    set_cell(counts, 1, "J1_P7", "1e12")
    table = fl.read_counts(counts)
    assert table.loc[0, "J1_P4"] == 12.5 and table.loc[1, "J1_P7"] == 1e12


# --- FluorescenceData: duplicate promoters ------------------------------------------------------

def duplicate_rows(path: str, sep: str, rows: list[int]) -> None:
    """Append copies of `rows` (data rows from 0) to a raw table, as the leaked probe had."""
    table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    pd.concat([table, table.iloc[rows]]).to_csv(path, sep=sep, index=False)


def test_exact_duplicates_are_dropped_and_no_sequence_is_in_two_splits(tmp_path, capsys):
    paths = fluorescence_fixture.generate(str(tmp_path), np.random.default_rng(1), num_sequences=585,
                                          low_read_fraction=0.0)
    duplicated = list(range(0, 585, 10))  # 59 promoters, each twice in both files
    duplicate_rows(paths["counts"], ",", duplicated)
    duplicate_rows(paths["sequences"], "\t", duplicated)
    task = build_task("FluorescenceData", str(tmp_path))
    task.prepare()
    out = capsys.readouterr().out
    assert (f"[FluorescenceData] {paths['counts']}: dropped 59 exact duplicate row(s) (first: row 587, a repeat of "
            "row 2)") in out
    assert (f"[FluorescenceData] {paths['sequences']}: dropped 59 exact duplicate row(s) (first: row 587, a repeat "
            "of row 2)") in out
    assert (f"[FluorescenceData] merged 585 promoters; dropped 0 of 585 {fl.COUNTS_FILE} rows passing min_reads=5 "
            f"(no row in {fl.SEQUENCES_FILE}) and 0 of 585 {fl.SEQUENCES_FILE} rows (no row in {fl.COUNTS_FILE}); "
            "0 more were below min_reads") in out
    merged = task.merged
    assert len(merged) == 585 and merged["sequence"].is_unique
    split_of = {}
    for split in ("train", "val", "test"):
        for seq in merged.loc[merged[f"is_{split}"], "sequence"]:
            assert split_of.setdefault(seq, split) == split, f"{seq[:20]}... in {split_of[seq]} and {split}"
    assert sum(len(getattr(task, f"{s}_dataset")) for s in ("train", "val", "test")) == 585
    # the column totals of the normalisation count each promoter once: same targets as without the repeats
    clean = fluorescence_fixture.generate(str(tmp_path / "clean"), np.random.default_rng(1), num_sequences=585,
                                          low_read_fraction=0.0)
    reference = fl.build_merged(clean["counts"], clean["sequences"], report=False)
    np.testing.assert_allclose(merged[list(fl.CELLS)].to_numpy(), reference[list(fl.CELLS)].to_numpy())


def test_conflicting_duplicates_are_refused_naming_both_rows(fluo_raw):
    root, counts, sequences = fluo_raw
    duplicate_rows(counts, ",", [3])
    set_cell(counts, 80, "J2_P4", "999")
    original = pd.read_csv(counts).loc[3, "J2_P4"]
    raises(f"{counts}: rows 5 and 82 have the same sequence but different J2_P4 ({original} vs 999); keep one of them",
           build_task("FluorescenceData", root).prepare)
    fluo_raw_table = pd.read_csv(sequences, sep="\t", dtype=str)
    pd.read_csv(counts).iloc[:80].to_csv(counts, index=False)  # counts fixed again
    row = fluo_raw_table.iloc[[6]].copy()
    row["final_provenance"] = "source=synthetic ~ type=other"
    row["class"] = "ClassIII" if fluo_raw_table.loc[6, "class"] != "ClassIII" else "ClassII"
    pd.concat([fluo_raw_table, row]).to_csv(sequences, sep="\t", index=False)
    raises(f"{sequences}: rows 8 and 82 have the same sequence but different class ({fluo_raw_table.loc[6, 'class']!r} "
           f"vs {row['class'].iloc[0]!r}); keep one of them", build_task("FluorescenceData", root).prepare)


def test_rows_without_a_match_in_the_other_file_are_reported(fluo_raw, capsys):
    root, counts, sequences = fluo_raw
    table = pd.read_csv(sequences, sep="\t", dtype=str)
    table.drop(index=[1, 2, 3]).to_csv(sequences, sep="\t", index=False)  # 3 counted promoters without a row
    extra = table.iloc[[0]].copy()
    extra["sequence"] = "A" * 250  # listed but never counted
    count_table = pd.read_csv(counts, dtype=str)
    count_table.loc[4, "T2_sum"] = "1"  # below min_reads
    count_table.to_csv(counts, index=False)
    pd.concat([table.drop(index=[1, 2, 3]), extra]).to_csv(sequences, sep="\t", index=False)
    task = build_task("FluorescenceData", root)
    task.prepare()
    assert (f"[FluorescenceData] merged 76 promoters; dropped 3 of 79 {fl.COUNTS_FILE} rows passing min_reads=5 "
            f"(no row in {fl.SEQUENCES_FILE}) and 1 of 78 {fl.SEQUENCES_FILE} rows (no row in {fl.COUNTS_FILE}); "
            "1 more were below min_reads\n") in capsys.readouterr().out
    assert len(task.merged) == 76


def test_cache_of_the_old_format_is_rebuilt(fluo_raw):
    root, _, _ = fluo_raw
    task = build_task("FluorescenceData", root)
    assert task.cache_params()["table_format"] == 2
    assert build_task("FluorescenceData_classification", root).cache_params()["table_format"] == 2
    task.prepare()
    manifest = os.path.join(task.cache_dir, MANIFEST)
    with open(manifest) as handle:
        assert json.load(handle)["params"]["table_format"] == 2
    old = {k: v for k, v in task.cache_params().items() if k != "table_format"}  # a cache written before the change
    io_utils.save_json({"fingerprint": io_utils.fingerprint(task.input_paths(), old), "params": old}, manifest)
    assert not build_task("FluorescenceData", root).cache_is_fresh()


# --- Sharpr_MPRA: one sequence length --------------------------------------------------------------

def write_hdf5(path, length: int, n: int = 8) -> None:
    with h5py.File(path, "w") as handle:
        handle.create_group("X").create_dataset("sequence", data=np.eye(4, dtype=np.float32)[np.zeros((n, length), int)])
        handle.create_group("Y").create_dataset("output", data=np.zeros((n, 12), np.float32))


@pytest.mark.parametrize("name", ["valid.hdf5", "test.hdf5"])
def test_sharpr_split_files_of_another_length_are_refused(tmp_path, name):
    sharpr_fixture.generate(str(tmp_path), np.random.default_rng(0), num_train=16, num_val=8, num_test=8)
    raw = tmp_path / "Sharpr_MPRA"
    write_hdf5(raw / name, 150)
    task = build_task("Sharpr_MPRA", str(tmp_path))
    raises(f"{raw / name}: sequences are 150 bp but {raw / 'train.hdf5'} has 145 bp; every split must have one "
           "sequence length", task.prepare)
    assert not os.path.exists(os.path.join(task.cache_dir, "train_seqs.npy"))  # refused before any conversion
    assert sharpr.check_lengths({"train": str(raw / "train.hdf5"), "val": str(raw / "train.hdf5")}) == 145


# --- atomic writer: permissions and stale temporaries ---------------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_mode_of_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        io_utils.save_json({"a": 1}, str(tmp_path / "summary.json"))
        io_utils.save_table(pd.DataFrame({"a": [1]}), str(tmp_path / "metrics.tsv"))
        io_utils.save_table(pd.DataFrame({"a": [1]}), str(tmp_path / "metrics.csv.gz"), sep=",")
        io_utils.save_npy(str(tmp_path / "cache.npy"), np.zeros(3))
        io_utils.save_text("x", str(tmp_path / "done.txt"))
        write_predictions(pd.DataFrame({"pred_a": [1.0]}), str(tmp_path / "preds.parquet"))
        model = MultiTaskModule(heads=[FLUO], model_name="PureCNN", model_size="tiny")
        save_model_checkpoint(model, str(tmp_path / "model.ckpt"))
        AtomicCheckpointIO().save_checkpoint({"state_dict": {}}, str(tmp_path / "last.ckpt"))
    finally:
        os.umask(previous)
    names = ["summary.json", "metrics.tsv", "metrics.csv.gz", "cache.npy", "done.txt", "preds.parquet", "model.ckpt",
             "last.ckpt"]
    assert {n: oct(stat.S_IMODE(os.stat(tmp_path / n).st_mode)) for n in names} == {n: oct(mode) for n in names}
    assert sorted(os.listdir(tmp_path)) == sorted(names)  # no temporaries left
    assert gzip.decompress((tmp_path / "metrics.csv.gz").read_bytes()) == b"a\n1\n"  # compressed as the name says


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporaries_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    dest = tmp_path / "merged.tsv"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / download.temporary_name(str(dest), pid=dead_pid())
        dead_download = tmp_path / (download.temporary_name(str(dest), pid=dead_pid()) + ".download")
        alive = tmp_path / download.temporary_name(str(dest), pid=live.pid)
        mine = tmp_path / download.temporary_name(str(dest))  # this process: possibly another thread's write
        other_host = tmp_path / f".merged.tsv.{dead_pid()}.00000000-0123456789ab.part"
        other_dest = tmp_path / download.temporary_name(str(tmp_path / "merged.tsv.1"), pid=dead_pid())
        old_style = tmp_path / ".merged.tsv.k2j4l1x9.part"  # mkstemp name of older versions: writer unknown
        kept = [alive, mine, other_host, other_dest, old_style]
        for path in [dead, dead_download, *kept]:
            path.write_text("partial")
        assert re.fullmatch(rf"\.merged\.tsv\.{live.pid}\.[0-9a-f]{{8}}-[0-9a-f]{{12}}\.part", alive.name)
        io_utils.save_table(pd.DataFrame({"a": [1]}), str(dest))
        assert not dead.exists() and not dead_download.exists()
        assert all(path.exists() for path in kept)
        assert dest.read_text() == "a\n1\n"
    finally:
        live.kill()
        live.wait()
    # once its writer has died, the next write removes it too
    io_utils.save_table(pd.DataFrame({"a": [2]}), str(dest))
    assert not alive.exists() and mine.exists()


# --- predict ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = MultiTaskModule(heads=[FLUO], model_name="PureCNN", model_size="tiny")
    model.sequence_lengths = {"Fluorescence": 250}
    return save_model_checkpoint(model, str(tmp_path_factory.mktemp("ckpt") / "model.ckpt"))


def promoters(n: int = 3) -> list[str]:
    rng = np.random.default_rng(0)
    return ["".join(rng.choice(list("ACGT"), 250)) for _ in range(n)]


def write_fasta(path, ids, sequences, bom: bool = False) -> str:
    text = "".join(f">{i}\n{s}\n" for i, s in zip(ids, sequences))
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return str(path)


def test_output_equal_to_the_input_is_refused_before_anything_is_written(tmp_path, capsys):
    seqs = promoters(2)
    table = tmp_path / "seqs.csv"
    table.write_text(f"id,sequence\na,{seqs[0]}\nb,{seqs[1]}\n")
    before = table.read_text()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(table)
    os.link(table, tmp_path / "hard.csv")
    missing = str(tmp_path / "none.ckpt")  # refused before any model is looked for
    for output in (str(table), str(tmp_path / "sub" / ".." / "seqs.csv"), str(tmp_path / "link.csv"),
                   str(tmp_path / "hard.csv")):
        message = cli_error(capsys, "predict", "--checkpoint", missing, "--input", str(table), "--output", output)
        assert message == (f"{output}: is the input file {table}; writing the predictions there would overwrite the "
                           "sequences; choose another output file")
    fasta = write_fasta(tmp_path / "seqs.fa", ["a", "b"], seqs)  # checked before the output format
    assert cli_error(capsys, "predict", "--checkpoint", missing, "--input", fasta, "--output", fasta) == (
        f"{fasta}: is the input file {fasta}; writing the predictions there would overwrite the sequences; choose "
        "another output file")
    assert table.read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["hard.csv", "link.csv", "seqs.csv", "seqs.fa", "sub"]


def test_output_formats_parquet_tsv_csv_and_gzip(tmp_path, checkpoint, capsys):
    fasta = write_fasta(tmp_path / "seqs.fa", ["a", "b", "c"], promoters())
    for name in ("p.csv", "p.tsv", "p.parquet", "p.csv.gz", "p.tsv.gz", "P.CSV"):
        cli.main(["predict", "--checkpoint", checkpoint, "--input", fasta, "--output", str(tmp_path / name), "--quiet"])
    reference = pd.read_csv(tmp_path / "p.csv")
    assert list(reference.columns) == ["id", "sequence", *PRED]
    assert (tmp_path / "p.parquet").read_bytes()[:4] == b"PAR1"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), reference, check_dtype=False, atol=1e-6)
    assert (tmp_path / "p.tsv").read_text().splitlines()[0] == "\t".join(reference.columns)
    for name, sep in (("p.tsv", "\t"), ("p.csv.gz", ","), ("p.tsv.gz", "\t"), ("P.CSV", ",")):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name, sep=sep), reference)
    with gzip.open(tmp_path / "p.tsv.gz", "rt") as handle:
        assert handle.readline().rstrip("\n") == "\t".join(reference.columns)
    capsys.readouterr()
    message = cli_error(capsys, "predict", "--checkpoint", checkpoint, "--input", fasta,
                        "--output", str(tmp_path / "p.xlsx"))
    assert message == (f"{tmp_path / 'p.xlsx'}: unknown output format; name the file .csv, .tsv, .parquet, .csv.gz "
                       "or .tsv.gz")
    assert not (tmp_path / "p.xlsx").exists()


def test_directories_as_input_or_output_are_refused(tmp_path, checkpoint, capsys):
    fasta = write_fasta(tmp_path / "seqs.fa", ["a"], promoters(1))
    raises(f"{tmp_path}: is a directory; give a FASTA or CSV/TSV file of sequences", read_sequences, str(tmp_path))
    message = cli_error(capsys, "predict", "--checkpoint", checkpoint, "--input", str(tmp_path),
                        "--output", str(tmp_path / "p.csv"))
    assert message == f"{tmp_path}: is a directory; give a FASTA or CSV/TSV file of sequences"
    (tmp_path / "out").mkdir()
    message = cli_error(capsys, "predict", "--checkpoint", checkpoint, "--input", fasta, "--output", str(tmp_path / "out"))
    assert message == f"{tmp_path / 'out'}: is a directory; give a file name, e.g. {tmp_path / 'out' / 'predictions.csv'}"
    slash = str(tmp_path / "new") + "/"
    message = cli_error(capsys, "predict", "--checkpoint", checkpoint, "--input", fasta, "--output", slash)
    assert message == f"{slash}: is a directory; give a file name, e.g. {slash}predictions.csv"
    assert not (tmp_path / "new").exists() and os.listdir(tmp_path / "out") == []


def test_byte_order_mark_is_ignored(tmp_path, checkpoint):
    seqs = promoters(2)
    fasta = write_fasta(tmp_path / "bom.fa", ["a", "b"], seqs, bom=True)
    records = read_sequences(fasta)
    assert records.ids == ["a", "b"] and records.sequences == seqs
    for name, sep in (("bom.csv", ","), ("bom.tsv", "\t"), ("bom.txt", "\t")):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + f"id{sep}sequence\na{sep}{seqs[0]}\nb{sep}{seqs[1]}\n".encode())
        records = read_sequences(str(tmp_path / name))
        assert records.id_column == "id" and records.ids == ["a", "b"] and records.sequences == seqs
    with gzip.open(tmp_path / "bom.fa.gz", "wb") as handle:
        handle.write((tmp_path / "bom.fa").read_bytes())
    assert read_sequences(str(tmp_path / "bom.fa.gz")).ids == ["a", "b"]
    cli.main(["predict", "--checkpoint", checkpoint, "--input", fasta, "--output", str(tmp_path / "p.csv"), "--quiet"])
    assert pd.read_csv(tmp_path / "p.csv")["id"].tolist() == ["a", "b"]


def test_duplicate_ids_warn_on_one_line_and_are_all_predicted(tmp_path, checkpoint, capsys):
    seqs = promoters(6)
    fasta = write_fasta(tmp_path / "dup.fa", ["x", "a", "b", "a", "b", "a"], seqs)
    cli.main(["predict", "--checkpoint", checkpoint, "--input", fasta, "--output", str(tmp_path / "p.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert err == (f"[predict] warning: {fasta}: 2 id(s) occur more than once (first: 'a', 3 times; 5 records in all); "
                   "every record is predicted\n")
    preds = pd.read_csv(tmp_path / "p.csv")
    assert preds["id"].tolist() == ["x", "a", "b", "a", "b", "a"] and preds["sequence"].tolist() == seqs
    cli.main(["predict", "--checkpoint", checkpoint, "--input", write_fasta(tmp_path / "u.fa", ["a", "b"], seqs[:2]),
              "--output", str(tmp_path / "u.csv"), "--quiet"])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("device, message", [
    ("cuda", "device 'cuda': no CUDA GPU is available on this machine (torch.cuda.is_available() is False); "
             "use --device cpu"),
    ("cuda:1", "device 'cuda:1': no CUDA GPU is available on this machine (torch.cuda.is_available() is False); "
               "use --device cpu"),
    ("gpu", "device 'gpu' is not a torch device; use cpu, cuda, cuda:N or mps"),
])
def test_gpu_device_without_a_gpu_is_refused_before_loading_models(tmp_path, capsys, monkeypatch, device, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fasta = write_fasta(tmp_path / "s.fa", ["a"], promoters(1))
    got = cli_error(capsys, "predict", "--checkpoint", str(tmp_path / "none.ckpt"), "--input", fasta,
                    "--output", str(tmp_path / "p.csv"), "--device", device)
    assert got == message
    assert not (tmp_path / "p.csv").exists()


def test_gpu_index_beyond_the_machine_is_refused(tmp_path, checkpoint, monkeypatch):
    from promoter_modelling.predict import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    raises("device 'cuda:3': this machine has 1 CUDA GPU(s) (cuda:0 to cuda:0)", check_device, "cuda:3")
    check_device("cuda:0")
    check_device("cpu")


def test_batch_size_zero_is_still_refused(tmp_path, checkpoint, capsys):
    fasta = write_fasta(tmp_path / "s.fa", ["a"], promoters(1))
    assert cli_error(capsys, "predict", "--checkpoint", checkpoint, "--input", fasta, "--output",
                     str(tmp_path / "p.csv"), "--batch_size", "0") == "--batch_size must be at least 1, got 0"
