"""Malinois_MPRA: preprocessing against hand computations, the published subsample, caches per
variant, model inputs of every kind, bad raw files."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from conftest import raises

from promoter_modelling.fixtures import malinois as fixture
from promoter_modelling.recipe import make_recipe
from promoter_modelling.tasks import malinois
from promoter_modelling.tasks.base import LoaderSettings, TaskContext
from promoter_modelling.tasks.inputs import count_motif_hits, kmer_tokens, load_kmer_vocab, read_motifs
from promoter_modelling.tasks.registry import build_task, expand_task_names

CELLS = malinois.CELLS


def element(seed: int, length: int = 200) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), size=length))


def write_raw(directory, refs: dict[str, list[tuple[str, str]]], quants: dict[str, list[tuple[str, object]]],
              info: list[tuple[str, str, str, str]]) -> str:
    os.makedirs(directory, exist_ok=True)
    for ref, records in refs.items():
        with open(os.path.join(directory, f"{ref}.fasta"), "w") as handle:
            handle.write("".join(f">{i}\n{s}\n" for i, s in records))
    for quant, rows in quants.items():
        with open(os.path.join(directory, f"{quant}.tsv"), "w") as handle:
            handle.write("ID\tlfcSE\tlog2FoldChange\n" + "".join(f"{i}\t0.1\t{v}\n" for i, v in rows))
    frame = pd.DataFrame(info, columns=malinois.FILE_INFO_COLUMNS)
    frame.insert(0, "count_file", [f"ENCFF{i:03d}CNT" for i in range(len(frame))])
    frame.to_csv(os.path.join(directory, malinois.FILE_INFO), index=False)
    return directory


@pytest.fixture
def small_raw(tmp_path):
    """Six elements, two references, every cell one experiment except K562 (three files,
    one of them listed by two count files)."""
    seqs = {name: element(i) for i, name in enumerate(["7:1:A:G", "13:5:C:T", "19:9:G:A", "X:3:T:C", "2:8:A:C"])}
    seqs["DESIGN:1"] = element(99)
    seqs["5:4:G:T"] = element(7, 180)  # not 200 bp: dropped
    refs = {"ENCFF001REF": [(k, seqs[k]) for k in ["7:1:A:G", "13:5:C:T", "19:9:G:A", "5:4:G:T"]],
            "ENCFF002REF": [(k, seqs[k]) for k in ["X:3:T:C", "2:8:A:C", "DESIGN:1"]]}
    quants = {
        # K562: three experiments; 7:1 measured 1.0, 1.0 and 4.0 (published drops the repeated 1.0)
        "ENCFF100QNT": [("7:1:A:G", 1.0), ("13:5:C:T", 2.0), ("5:4:G:T", 9.0), ("2:8:A:C", "nan")],
        "ENCFF101QNT": [("7:1:A:G", 1.0), ("X:3:T:C", -1.0), ("2:8:A:C", "inf")],
        "ENCFF102QNT": [("7:1:A:G", 4.0), ("DESIGN:1", 0.5), ("unknown:7", 3.0)],
        "ENCFF200QNT": [("7:1:A:G", 0.1), ("13:5:C:T", 0.2), ("19:9:G:A", 0.3), ("X:3:T:C", 0.4), ("2:8:A:C", 0.5),
                        ("DESIGN:1", 0.6)],
    }
    info = [("K562", "/experiments/ENCSR1/", "ENCFF001REF", "ENCFF100QNT"),
            ("K562", "/experiments/ENCSR1/", "ENCFF001REF", "ENCFF100QNT"),  # a second count file, same experiment
            ("K562", "/experiments/ENCSR2/", "ENCFF002REF", "ENCFF101QNT"),
            ("K562", "/experiments/ENCSR3/", "ENCFF002REF", "ENCFF102QNT")]
    for cell in CELLS[1:]:
        for ref in ("ENCFF001REF", "ENCFF002REF"):
            info.append((cell, f"/experiments/ENCSR{cell}/", ref, "ENCFF200QNT"))
    return write_raw(str(tmp_path / "Malinois_MPRA"), refs, quants, info), seqs


def test_per_cell_mean_union_masks_and_split_by_hand(small_raw):
    directory, seqs = small_raw
    info = malinois.read_file_info(os.path.join(directory, malinois.FILE_INFO))
    table = malinois.build_final_table(directory, info).set_index("ID")
    # K562 mean over experiments: 7:1 = (1 + 1 + 4) / 3; the K562 references hold DESIGN:1 only via ENCFF002REF
    # (ENCSR3 uses it), 2:8 has only NaN / inf values: unmeasured in K562
    assert table.loc["7:1:A:G", "K562_log2FoldChange"] == pytest.approx(2.0)
    assert table.loc["13:5:C:T", "K562_log2FoldChange"] == pytest.approx(2.0)
    assert table.loc["X:3:T:C", "K562_log2FoldChange"] == pytest.approx(-1.0)
    assert table.loc["DESIGN:1", "K562_log2FoldChange"] == pytest.approx(0.5)
    assert np.isnan(table.loc["2:8:A:C", "K562_log2FoldChange"]) and np.isnan(table.loc["19:9:G:A",
                                                                                         "K562_log2FoldChange"])
    assert table.loc["19:9:G:A", "A549_log2FoldChange"] == pytest.approx(0.3)
    assert "5:4:G:T" not in table.index and "unknown:7" not in table.index  # 180 bp; no reference sequence
    assert sorted(table.index) == sorted(k for k in seqs if k != "5:4:G:T")
    assert (table["sequence"] == pd.Series(seqs)[table.index]).all()
    split = {i: ("test" if r.is_test else "val" if r.is_val else "train") for i, r in table.iterrows()}
    assert split == {"7:1:A:G": "test", "13:5:C:T": "test", "19:9:G:A": "val", "X:3:T:C": "val", "2:8:A:C": "train",
                     "DESIGN:1": "train"}
    assert (table[["is_train", "is_val", "is_test"]].sum(axis=1) == 1).all()
    # published: the repeated (7:1, 1.0) pair of two experiments counts once: (1 + 4) / 2
    published = malinois.build_final_table(directory, info, repeats="published").set_index("ID")
    assert published.loc["7:1:A:G", "K562_log2FoldChange"] == pytest.approx(2.5)


def test_subsample_is_the_published_draw(tmp_path):
    """The published procedure, written out independently: global seed 97, per-chromosome
    quotas, uniform top-ups, one shuffle, first k rows of each chromosome."""
    rng = np.random.default_rng(3)
    n_rows = 900
    train = pd.DataFrame({"ID": [f"r{i}" for i in range(n_rows)],
                          "chr": rng.choice(["1", "2", "3", "X", "DESIGN"], p=[0.4, 0.25, 0.2, 0.1, 0.05], size=n_rows)})
    n = 300
    np.random.seed(97)
    counts = train["chr"].value_counts()
    quota = {c: int(np.floor(n * counts[c] / n_rows)) for c in counts.index}
    while sum(quota.values()) < n:
        quota[np.random.choice(counts.index)] += 1
    shuffled = train.sample(frac=1, replace=False)
    expected = pd.concat([shuffled[shuffled["chr"] == c].iloc[:quota[c]] for c in counts.index])
    chosen = malinois.subsample_train(train, n)
    assert chosen["ID"].tolist() == expected["ID"].tolist()
    assert malinois.subsample_train(train, n)["ID"].tolist() == chosen["ID"].tolist()  # same N: same rows
    raises("--n_train_subsample 901 is larger than the 900 training elements measured in all five cells",
           malinois.subsample_train, train, 901)


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("malinois"))
    fixture.generate(root, np.random.default_rng(0), num_elements=1500)
    return root


def split_arrays(task) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    task.prepare()
    return {s: (np.array(getattr(task, f"{s}_dataset").x), np.array(getattr(task, f"{s}_dataset").y))
            for s in ("train", "val", "test")}


def test_full_and_subsampled_caches_never_overwrite_each_other(fixture_dir):
    full_first = split_arrays(build_task("Malinois_MPRA", fixture_dir))
    sub = build_task("Malinois_MPRA_subsampled_300", fixture_dir)
    sub_arrays = split_arrays(sub)
    full_again = build_task("Malinois_MPRA", fixture_dir)
    for split, (x, y) in split_arrays(full_again).items():
        np.testing.assert_array_equal(x, full_first[split][0])
        np.testing.assert_array_equal(y, full_first[split][1])
    assert len(sub_arrays["train"][0]) == 300 and not np.isnan(sub_arrays["test"][1]).any()
    assert sub.head.name == "MalinoisMPRA_subsampled_300" and full_again.head.name == "MalinoisMPRA"
    assert sub.cache_dir != full_again.cache_dir
    # the subsampled test and val sets are the intersection's rows on those chromosomes
    table = full_again.table
    common = table[table[malinois.TARGET_COLUMNS].notna().all(axis=1)]
    assert sorted(sub.split_table("test")["ID"]) == sorted(common[common["is_test"]]["ID"])
    assert sorted(sub.split_table("val")["ID"]) == sorted(common[common["is_val"]]["ID"])
    # the served rows match the table: codes of the sequences, targets with NaN where unmeasured
    test = full_again.split_table("test")
    x, y = full_first["test"]
    assert "".join("ACGT"[c] for c in x[0]) == test["sequence"].iloc[0]
    np.testing.assert_array_equal(np.isnan(y), test[malinois.TARGET_COLUMNS].isna().to_numpy())
    mask = full_again.test_dataset.mask
    np.testing.assert_array_equal(mask, ~np.isnan(y))


def test_published_task_names_and_subsample_rewrite(tmp_path):
    from promoter_modelling.cli import parse_train_args

    assert expand_task_names("SuRE_classification,Malinois_MPRA_subsampled_5000")[-1] == "Malinois_MPRA_subsampled_5000"
    config = parse_train_args(["--modelling_strategy", "pretrain+finetune", "--pretrain_tasks", "Malinois_MPRA",
                               "--finetune_tasks", "Malinois_MPRA", "--subsample_train_set", "--n_train_subsample",
                               "700"])
    assert config.tasks.finetune_tasks == "Malinois_MPRA_subsampled_700"
    assert config.tasks.pretrain_tasks == "Malinois_MPRA"  # never rewritten, as published
    raises("--subsample_train_set subsamples Malinois_MPRA, but --single_task FluorescenceData does not name it",
           parse_train_args, ["--modelling_strategy", "single_task", "--single_task", "FluorescenceData",
                              "--subsample_train_set"])


def test_shrink_test_set_applies_only_where_malinois_is_pretrained(fixture_dir, capsys):
    from promoter_modelling.cli import parse_train_args
    from promoter_modelling.planning import flag_notices

    loader = LoaderSettings(shrink_test_set=True)
    evaluated = build_task("Malinois_MPRA", fixture_dir, loader, evaluated=True)
    pretrained = build_task("Malinois_MPRA", fixture_dir, loader, evaluated=False)
    evaluated.prepare()
    pretrained.prepare()
    assert len(pretrained.test_dataset) == 10 and len(pretrained.val_dataset) == 10
    assert len(evaluated.test_dataset) > 10
    config = parse_train_args(["--modelling_strategy", "single_task", "--single_task", "Malinois_MPRA",
                               "--shrink_test_set", "--n_train_subsample", "10"])
    assert flag_notices(config) == [
        "--shrink_test_set does not apply to Malinois_MPRA: their val/test sets are used whole (as published; "
        "Malinois_MPRA is cut only as a pretraining task)",
        "--n_train_subsample has no effect without --subsample_train_set"]
    config = parse_train_args(["--modelling_strategy", "pretrain+finetune", "--pretrain_tasks", "Malinois_MPRA",
                               "--finetune_tasks", "FluorescenceData", "--shrink_test_set", "--malinois_repeats",
                               "published", "--starrseq_coordinates", "published"])
    assert flag_notices(config) == [
        "--shrink_test_set does not apply to FluorescenceData: their val/test sets are used whole (as published; "
        "Malinois_MPRA is cut only as a pretraining task)",
        "--starrseq_coordinates has no effect: no task of this run reads it"]


def test_token_and_motif_inputs_through_the_recipe(fixture_dir, tmp_path):
    from promoter_modelling.fixtures.motifs import demo_meme_motifs, meme_text
    from promoter_modelling.run_config import DataOptions
    from promoter_modelling.tasks.inputs import standard_kmer_tokenizer

    meme = tmp_path / "motifs.meme"
    meme.write_text(meme_text(demo_meme_motifs()))
    tokenizer = standard_kmer_tokenizer(str(tmp_path / "tokenizer"))
    for kind, model, expected in (
            ("tokens", "DNABERT", lambda s: kmer_tokens(s, load_kmer_vocab(tokenizer))),
            ("motif_counts", "MotifBasedFCN", lambda s: count_motif_hits(s, read_motifs(str(meme))))):
        recipe = make_recipe(kind, meme_file=str(meme), dnabert_path=tokenizer)
        context = TaskContext(model, recipe, DataOptions())
        task = build_task("Malinois_MPRA", fixture_dir, **malinois.MalinoisMPRA.run_options(context))
        task.prepare()
        table = task.split_table("val")
        np.testing.assert_array_equal(np.asarray(task.val_dataset.x), expected(table["sequence"].tolist()))
        if kind == "tokens":
            assert task.val_dataset.x.shape[1] == 197  # 195 6-mers + [CLS] + [SEP]


@pytest.mark.parametrize("case, message", [
    ("multiline", "...ENCFF001REF.fasta: line 3: record '7:1:A:G' is not one header line followed by one sequence line "
                  "(multi-line FASTA records are not supported; unwrap the file)"),
    ("not_a_number", "...ENCFF100QNT.tsv: row 3: log2FoldChange 'high' is not a number"),
    ("no_column", "...ENCFF100QNT.tsv: missing column(s) log2FoldChange (found: ID)"),
    ("bad_cell", "...file_info.csv: row 2: cell 'HeLa' is not one of K562, HepG2, GM12878, SK-N-SH, A549"),
])
def test_bad_raw_files_fail_in_one_line_and_leave_no_cache(tmp_path, case, message):
    directory = tmp_path / "Malinois_MPRA"
    refs = {"ENCFF001REF": [("7:1:A:G", element(1)), ("2:2:A:G", element(2))]}
    quants = {"ENCFF100QNT": [("7:1:A:G", 1.0), ("2:2:A:G", 2.0)]}
    write_raw(str(directory), refs, quants, [(c, "/experiments/E/", "ENCFF001REF", "ENCFF100QNT") for c in CELLS])
    if case == "multiline":
        (directory / "ENCFF001REF.fasta").write_text(f">7:1:A:G\n{element(1)[:100]}\n{element(1)[100:]}\n")
    elif case == "not_a_number":
        (directory / "ENCFF100QNT.tsv").write_text("ID\tlfcSE\tlog2FoldChange\n7:1:A:G\t0.1\t1.0\n2:2:A:G\t0.1\thigh\n")
    elif case == "no_column":
        (directory / "ENCFF100QNT.tsv").write_text("ID\tlfcSE\tvalue\n7:1:A:G\t0.1\t1.0\n")
    else:
        info = pd.read_csv(directory / malinois.FILE_INFO)
        info.loc[0, "cell"] = "HeLa"
        info.to_csv(directory / malinois.FILE_INFO, index=False)
    task = build_task("Malinois_MPRA", str(tmp_path))
    raises(message, task.prepare)
    assert not os.path.exists(task.table_path) and not os.path.exists(os.path.join(task.cache_dir,
                                                                                   "cache_manifest.json"))
    assert not [f for f in os.listdir(task.cache_dir) if f.endswith(".npy")]


def test_task_walks_the_portal_downloads_once_and_matches_local_files(fixture_dir, tmp_path, monkeypatch):
    """The 43 published count files served by a local stand-in portal: the task finds and fetches
    every file, builds the same table as from the files placed by hand, and a fresh task over the
    same folder makes no request."""
    from promoter_modelling.fixtures.encode_portal import portal_documents, serve

    source = os.path.join(fixture_dir, "Malinois_MPRA")
    info = pd.read_csv(os.path.join(source, malinois.FILE_INFO))
    documents = portal_documents(info, source)
    with serve(documents) as base:
        monkeypatch.setenv("PROMOTER_MODELLING_ENCODE_URL", base)
        task = build_task("Malinois_MPRA", str(tmp_path))
        task.prepare()
        assert base.requests[f"/files/{info['count_file'].iloc[0]}/?format=json"] == 1
        fetched = sum(base.requests.values())
        assert fetched == len(info) + info["dataset_id"].nunique() + info["element_references_id"].nunique() \
            + info["element_quantifications_id"].nunique()
        again = build_task("Malinois_MPRA", str(tmp_path))
        again.prepare()
        assert sum(base.requests.values()) == fetched  # the walk's answers and the files are kept
    walked = pd.read_csv(os.path.join(str(tmp_path), "Malinois_MPRA", malinois.FILE_INFO))
    assert walked[malinois.FILE_INFO_COLUMNS].equals(info[malinois.FILE_INFO_COLUMNS])
    by_hand = build_task("Malinois_MPRA", fixture_dir)
    by_hand.prepare()
    pd.testing.assert_frame_equal(task.table, by_hand.table)
