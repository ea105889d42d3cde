"""lentiMPRA: spreadsheets -> published table (forward/reverse rows, WTC11 names, chromosomes,
joint library), the chromosome + random split (grouped and published), bad inputs, caches and a
short training run on the generated fixture."""

from __future__ import annotations

import math
import os

import lightning
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import raises

from promoter_modelling.fixtures import lentimpra as fixture
from promoter_modelling.recipe import InputRecipe
from promoter_modelling.run_config import DataOptions
from promoter_modelling.sequence import decode
from promoter_modelling.tasks import lentimpra
from promoter_modelling.tasks.base import MANIFEST, LoaderSettings, TaskContext
from promoter_modelling.tasks.registry import build_task, build_tasks

SEQ = "230nt sequence (15nt 5' adaptor - 200nt element - 15nt 3' adaptor)"
A5, A3 = "AGGACCGGATCAACT", "CATTGCGTGAACCGA"
TRAIN = {"1", "3", "5", "6", "7", "8", "11", "12", "14", "15", "16", "18", "19", "22", "X", "Y", "specialchr"}
TEST = {"2", "9", "10", "13", "20", "21"}
VAL = {"4", "17"}


def element(k: int) -> str:
    """A 200-nt element of its own (seeded by k)."""
    return "".join(np.random.default_rng(1000 + k).choice(list("ACGT"), 200))


def rc(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


E = {k: element(k) for k in range(1, 12)}
NAN = float("nan")


def hand_sheets() -> dict[str, dict[str, pd.DataFrame]]:
    """A tiny spreadsheet set; every number below is checked by hand in test_preprocessing_by_hand."""
    def positions(names, chroms, elements):
        return pd.DataFrame({"name": names, "chr.hg19": chroms, "chr.hg38": chroms,
                             SEQ: [A5 + E[k] + A3 for k in elements]})

    return {
        "large_scale_positions.ods": {
            "K562 large-scale": positions(["k1", "k2", "k3", "k4", "k5"],
                                          ["chr1", "chr2", None, "chr1_KI270706v1_random", 4], [1, 2, 3, 4, 5]),
            "HepG2 large-scale": positions(["h1", "h2"], ["chr17", "chr3"], [6, 11]),
            "WTC11 large-scale": positions(["w1_F", "w2_F", "w3_F"], [1, "X", None], [7, 8, 9]),
        },
        "large_scale_exps.ods": {
            "K562_summary_data": pd.DataFrame({"name": ["k2", "k1", "k3", "k4", "k5", "kX"],
                                               "replicate 1": [9, 9, 9, 9, 9, 9],
                                               "mean": [0.5, 1.25, -0.3, 2.0, 0.1, 9.9]}),
            "K562_forward_reverse": pd.DataFrame({"name": ["k1", "k3"], "forward [log2(rna/dna)]": [1.0, -0.2],
                                                  "reverse [log2(rna/dna)]": [0.75, -0.4]}),
            "HepG2_summary_data": pd.DataFrame({"name": ["h1"], "mean": [0.8]}),
            "HepG2_forward_reverse": pd.DataFrame({"name": ["h1"], "forward [log2(rna/dna)]": [0.9],
                                                   "reverse [log2(rna/dna)]": [0.6]}),
            "WTC11_summary_data": pd.DataFrame({"name": ["w1_F", "w2_F", "w3_F"], "mean": [0.3, -1.0, 0.0]}),
            "WTC11_forward_reverse": pd.DataFrame({"name": ["w1", "w3"], "forward [log2(rna/dna)]": [0.2, 0.2],
                                                   "reverse [log2(rna/dna)]": [0.25, 0.1]}),
        },
        "designed_sequences.ods": {
            "joint library": pd.DataFrame({"name": ["j1", "j2", "j3"], "chr.hg38": [10, None, "X"],
                                           SEQ: [A5 + E[k] + A3 for k in (10, 1, 11)]}),
        },
        "designed_sequences_exps.ods": {
            "all_cell_types_summary": pd.DataFrame({"name": ["j3", "j1", "j2"],
                                                    "HepG2 [log2(rna/dna)]": [0.0, NAN, 0.6],
                                                    "K562 [log2(rna/dna)]": [-0.5, 1.0, 0.5],
                                                    "WTC11 [log2(rna/dna)]": [0.4, 2.0, 0.7]}),
        },
    }


# The table the published procedure gives for hand_sheets(), worked out by hand:
# (sequence, chromosome, orientation, K562, HepG2, WTC11)
EXPECTED = [
    (E[2], "chr2", "forward", 0.5, NAN, NAN),  # K562 forward rows: summary order, its mean
    (E[1], "chr1", "forward", 1.25, NAN, NAN),
    (E[3], "undefined", "forward", -0.3, NAN, NAN),
    (E[4], "specialchr", "forward", 2.0, NAN, NAN),
    (E[5], "4", "forward", 0.1, NAN, NAN),  # K562 chromosomes as given (numeric 4 -> "4")
    (rc(E[1]), "chr1", "reverse", 0.75, NAN, NAN),  # reverse rows: RC with the reverse value
    (rc(E[3]), "undefined", "reverse", -0.4, NAN, NAN),
    (E[6], "chr17", "forward", NAN, 0.8, NAN),
    (rc(E[6]), "chr17", "reverse", NAN, 0.6, NAN),
    (E[7], "chr1", "forward", NAN, NAN, 0.3),  # WTC11: "chr" prefixed
    (E[8], "chrX", "forward", NAN, NAN, -1.0),
    (E[9], "undefined", "forward", NAN, NAN, 0.0),
    (rc(E[7]), "chr1", "reverse", NAN, NAN, 0.25),  # "w1" + "_F" matched "w1_F"
    (rc(E[9]), "undefined", "reverse", NAN, NAN, 0.1),
    (E[11], "chrX", "forward", -0.5, 0.0, 0.4),  # joint library: summary order, all three cells
    (E[10], "chr10", "forward", 1.0, NAN, 2.0),
    (E[1], "undefined", "forward", 0.5, 0.6, 0.7),
]
UNDEFINED_ROWS = [2, 6, 11, 13, 16]


def write_sheets(root: str, sheets: dict[str, dict[str, pd.DataFrame]]) -> str:
    directory = os.path.join(root, "lentiMPRA")
    os.makedirs(directory, exist_ok=True)
    for filename, frames in sheets.items():
        with pd.ExcelWriter(os.path.join(directory, filename), engine="odf") as writer:
            for name, frame in frames.items():
                frame.to_excel(writer, sheet_name=name, index=False)
    return directory


def expected_labels(chromosomes: list[str]) -> list[str]:
    """Split of each listed chromosome by the published rule ("" for undefined)."""
    out = []
    for chrom in chromosomes:
        short = chrom[3:]
        out.append(next((name for name, listed in (("train", TRAIN), ("test", TEST), ("val", VAL))
                         if chrom in listed or short in listed), ""))
    return out


def published_flags(n: int) -> np.ndarray:
    """The published random split of n undefined rows: np.random.seed(97), then permutation."""
    np.random.seed(97)
    shuffled = np.arange(n)[np.random.permutation(n)]
    n_train, n_test = math.ceil(0.7 * n), math.ceil(0.2 * n)
    labels = np.empty(n, dtype=object)
    labels[shuffled[:n_train]] = "train"
    labels[shuffled[n_train:n_train + n_test]] = "test"
    labels[shuffled[n_train + n_test:]] = "val"
    return labels


def labels_of(table: pd.DataFrame) -> np.ndarray:
    flags = table[["is_train", "is_val", "is_test"]].to_numpy(dtype=bool)
    assert (flags.sum(axis=1) == 1).all()
    return np.array(["train", "val", "test"], dtype=object)[flags.argmax(axis=1)]


@pytest.fixture(scope="module")
def hand_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("lentimpra_hand"))
    write_sheets(root, hand_sheets())
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("lentimpra"))
    fixture.generate(root, np.random.default_rng(0))
    return root


@pytest.fixture(scope="module")
def grouped(data_dir):
    task = build_task("lentiMPRA", data_dir, LoaderSettings(batch_size=64))
    task.prepare()
    return task


@pytest.fixture(scope="module")
def published(data_dir):
    task = build_task("lentiMPRA", data_dir, LoaderSettings(batch_size=64), undefined_split="published")
    task.prepare()
    return task


def final_table(task) -> pd.DataFrame:
    return pd.read_csv(task.final_dataset_path, sep="\t", keep_default_na=False, na_values=[""])


# --- preprocessing -------------------------------------------------------------------------------
def test_preprocessing_by_hand(hand_root):
    task = build_task("lentiMPRA", hand_root, LoaderSettings(batch_size=4), undefined_split="published")
    task.prepare()
    table = final_table(task)
    assert list(table.columns) == ["sequence", "chromosome", "orientation", "K562", "HepG2", "WTC11",
                                   "is_train", "is_test", "is_val"]
    expected = pd.DataFrame(EXPECTED, columns=["sequence", "chromosome", "orientation", "K562", "HepG2", "WTC11"])
    pd.testing.assert_frame_equal(table[expected.columns], expected, check_dtype=False)

    labels = labels_of(table)
    listed = [i for i in range(len(EXPECTED)) if i not in UNDEFINED_ROWS]
    assert labels[listed].tolist() == expected_labels([EXPECTED[i][1] for i in listed])
    assert labels[listed].tolist() == ["test", "train", "train", "val", "train", "val", "val", "train", "train",
                                       "train", "train", "test"]
    assert labels[UNDEFINED_ROWS].tolist() == published_flags(len(UNDEFINED_ROWS)).tolist()

    # cached arrays: codes, NaN targets and the mask, per split in table order
    for split in ("train", "val", "test"):
        rows = [i for i in range(len(EXPECTED)) if labels[i] == split]
        dataset = getattr(task, f"{split}_dataset")
        assert dataset.x.dtype == np.uint8 and dataset.x.shape == (len(rows), 200)
        assert decode(np.asarray(dataset.x)) == [EXPECTED[i][0] for i in rows]
        y = np.array([EXPECTED[i][3:] for i in rows], dtype=np.float32)
        np.testing.assert_array_equal(np.asarray(dataset.y), y)  # NaN where not measured
        np.testing.assert_array_equal(np.asarray(dataset.mask), ~np.isnan(y))
    batch = next(iter(task.val_dataloader()))
    assert batch["mask"].dtype == torch.bool and batch["y"].dtype == torch.float32
    assert task.head.output_names == ["K562", "HepG2", "WTC11"] and task.head.kind == "masked_regression"


def test_grouped_split_by_hand(hand_root):
    task = build_task("lentiMPRA", hand_root, LoaderSettings(batch_size=4))
    task.prepare()
    labels = labels_of(final_table(task))
    listed = [i for i in range(len(EXPECTED)) if i not in UNDEFINED_ROWS]
    assert labels[listed].tolist() == expected_labels([EXPECTED[i][1] for i in listed])
    assert labels[16] == labels[1] == "train"  # the joint copy of k1 (no chromosome) follows k1 (chr1)
    assert labels[2] == labels[6] and labels[11] == labels[13]  # an element stays with its reverse complement
    # the two free groups (k3, w3) in order of first appearance, split by the seed-97 permutation
    free = published_flags(2)
    assert [labels[2], labels[11]] == free.tolist()


def test_chromosome_names_and_clean_up():
    values = pd.Series([1, 2.0, "X", None, float("nan"), "chr5", " 7 ", "Un_KI270302v1"], dtype=object)
    assert lentimpra.chromosome_names(values, add_prefix=True).fillna("<na>").tolist() == [
        "chr1", "chr2", "chrX", "<na>", "<na>", "chr5", "chr7", "chrUn_KI270302v1"]
    as_given = lentimpra.chromosome_names(values, add_prefix=False)
    assert lentimpra.clean_chromosomes(as_given).tolist() == [
        "1", "2", "X", "undefined", "undefined", "chr5", "7", "specialchr"]


# --- split on the generated fixture -------------------------------------------------------------
def groups_of(sequences: pd.Series) -> np.ndarray:
    """Independent grouping: a sequence with its reverse complement and identical copies."""
    canonical = [min(s, rc(s)) for s in sequences]
    return pd.factorize(pd.Series(canonical))[0]


def test_published_split_reproduces_row_by_row_seed_97(published):
    table = final_table(published)
    labels = labels_of(table)
    chromosomes = table["chromosome"].tolist()
    undefined = np.array([c == "undefined" for c in chromosomes])
    assert undefined.sum() > 100
    listed = np.flatnonzero(~undefined)
    assert labels[listed].tolist() == expected_labels([chromosomes[i] for i in listed])
    assert labels[undefined].tolist() == published_flags(int(undefined.sum())).tolist()


def test_grouped_split_keeps_reverse_complements_together_and_published_leaks(grouped, published):
    grouped_table, published_table = final_table(grouped), final_table(published)
    pd.testing.assert_frame_equal(grouped_table.iloc[:, :6], published_table.iloc[:, :6])
    groups = groups_of(grouped_table["sequence"])
    undefined = (grouped_table["chromosome"] == "undefined").to_numpy()
    by_group = pd.DataFrame({"group": groups, "grouped": labels_of(grouped_table),
                             "published": labels_of(published_table)})
    splits_per_group = by_group.groupby("group")[["grouped", "published"]].nunique()
    assert (splits_per_group["grouped"] == 1).all()  # every element with its RC and copies: one split
    leaking = splits_per_group.index[splits_per_group["published"] > 1]
    assert len(leaking) > 10  # row by row, many elements and their RCs land in different splits
    assert set(groups[undefined]) >= set(leaking)
    # rows on listed chromosomes are split the same way in both modes
    assert (by_group["grouped"][~undefined] == by_group["published"][~undefined]).all()
    # undefined groups with no listed copy: ceil(0.7 G) train, ceil(0.2 G) test, the rest val
    listed_groups = set(groups[~undefined])
    free = by_group[undefined & ~np.isin(groups, list(listed_groups))].drop_duplicates("group")
    counts = free["grouped"].value_counts()
    g = len(free)
    assert (counts["train"], counts["test"], counts["val"]) == (math.ceil(0.7 * g), math.ceil(0.2 * g),
                                                                g - math.ceil(0.7 * g) - math.ceil(0.2 * g))


def test_every_split_has_targets_for_every_cell(grouped):
    for split in ("train", "val", "test"):
        mask = np.asarray(getattr(grouped, f"{split}_dataset").mask)
        assert mask.any(axis=0).all(), split


def test_run_options_choose_the_split_and_caches_do_not_collide(data_dir, grouped, published):
    context = TaskContext("MTLucifer", InputRecipe(), DataOptions(lentimpra_undefined_split="published"))
    (built,) = build_tasks("lentiMPRA", data_dir, LoaderSettings(), context)
    assert built.undefined_split == "published" and built.options == {"undefined_split": "published"}
    assert lentimpra.LentiMPRA.run_options(TaskContext("MTLucifer", InputRecipe(), DataOptions())) == {
        "undefined_split": "grouped"}
    assert grouped.cache_dir != published.cache_dir
    assert grouped.data_fingerprint() != published.data_fingerprint()
    stamps = {t.cache_dir: os.path.getmtime(t.final_dataset_path) for t in (grouped, published)}
    for mode in ("grouped", "published"):  # both caches stay fresh: nothing is rebuilt
        again = build_task("lentiMPRA", data_dir, undefined_split=mode)
        assert again.cache_is_fresh()
        again.prepare()
        assert os.path.getmtime(again.final_dataset_path) == stamps[again.cache_dir]


def test_shrink_test_set_cuts_val_and_test_to_ten_rows(data_dir, grouped):
    task = build_task("lentiMPRA", data_dir, LoaderSettings(batch_size=64, shrink_test_set=True))
    task.prepare()
    assert len(task.val_dataset) == len(task.test_dataset) == 10
    assert len(task.train_dataset) == len(grouped.train_dataset)
    np.testing.assert_array_equal(task.val_dataset.y, np.asarray(grouped.val_dataset.y[:10]))


# --- bad inputs ----------------------------------------------------------------------------------
def failing_build(tmp_path, edit) -> tuple[str, object]:
    sheets = hand_sheets()
    edit(sheets)
    directory = write_sheets(str(tmp_path), sheets)
    return directory, build_task("lentiMPRA", str(tmp_path)).prepare


def assert_nothing_written(directory: str) -> None:
    left = sorted(os.listdir(directory))
    assert not [f for f in left if f.endswith((".tsv", ".npy")) or f == MANIFEST], left


def test_missing_sheet_is_reported(tmp_path):
    directory, prepare = failing_build(tmp_path, lambda s: s["large_scale_exps.ods"].pop("HepG2_forward_reverse"))
    raises(f"{directory}/large_scale_exps.ods: no sheet 'HepG2_forward_reverse' (sheets: 'K562_summary_data', "
           "'K562_forward_reverse', 'HepG2_summary_data', 'WTC11_summary_data', 'WTC11_forward_reverse')", prepare)
    assert_nothing_written(directory)


def test_missing_column_is_reported(tmp_path):
    def edit(sheets):
        sheets["designed_sequences_exps.ods"]["all_cell_types_summary"].pop("WTC11 [log2(rna/dna)]")

    directory, prepare = failing_build(tmp_path, edit)
    raises(f"{directory}/designed_sequences_exps.ods: sheet 'all_cell_types_summary' has no column "
           "'WTC11 [log2(rna/dna)]' (columns: 'name', 'HepG2 [log2(rna/dna)]', 'K562 [log2(rna/dna)]')", prepare)
    assert_nothing_written(directory)


def test_non_numeric_target_is_reported(tmp_path):
    def edit(sheets):
        frame = sheets["large_scale_exps.ods"]["K562_forward_reverse"]
        frame["reverse [log2(rna/dna)]"] = pd.Series([0.75, "0,4"], dtype=object)

    directory, prepare = failing_build(tmp_path, edit)
    raises(f"{directory}/large_scale_exps.ods: sheet 'K562_forward_reverse', row 3, column "
           "'reverse [log2(rna/dna)]': '0,4' is not a finite number", prepare)
    assert_nothing_written(directory)


@pytest.mark.parametrize("sequence,problem", [
    (A5 + E[1][:-1] + A3, "has 229 characters, expected 230 (15-nt 5' adaptor, 200-nt element, 15-nt 3' adaptor)"),
    (A5 + E[1][:50] + "R" + E[1][51:] + A3,
     "has invalid character 'R' at position 66 (counting from 1; allowed: A, C, G, T, N)"),
    (None, "is empty"),
], ids=["short", "invalid_character", "empty"])
def test_bad_sequence_is_reported(tmp_path, sequence, problem):
    def edit(sheets):
        sheets["designed_sequences.ods"]["joint library"].loc[1, SEQ] = sequence

    directory, prepare = failing_build(tmp_path, edit)
    raises(f"{directory}/designed_sequences.ods: sheet 'joint library', row 3: the 230-nt sequence {problem}", prepare)
    assert_nothing_written(directory)


def test_unlisted_chromosome_is_reported(tmp_path):
    def edit(sheets):
        sheets["large_scale_positions.ods"]["HepG2 large-scale"].loc[0, ["chr.hg19", "chr.hg38"]] = "chrM"

    directory, prepare = failing_build(tmp_path, edit)
    raises("lentiMPRA: 2 row(s) on chromosome 'chrM' (first: large_scale_positions.ods, sheet 'HepG2 large-scale', "
           "row 2) are in none of the train, val or test chromosome lists; remove those rows from the spreadsheet",
           prepare)
    assert_nothing_written(directory)


def test_unreadable_file_and_bad_option_are_reported(tmp_path):
    directory = write_sheets(str(tmp_path), hand_sheets())
    with open(os.path.join(directory, "designed_sequences.ods"), "w") as handle:
        handle.write("<html>Google Drive can't scan this file for viruses</html>")
    raises(f"{directory}/designed_sequences.ods: cannot be read as an OpenDocument spreadsheet (...); delete it to "
           "download it again", build_task("lentiMPRA", str(tmp_path)).prepare)
    assert_nothing_written(directory)
    raises("lentiMPRA undefined_split 'random': expected grouped or published", build_task, "lentiMPRA",
           str(tmp_path), undefined_split="random")


# --- training -------------------------------------------------------------------------------------
def test_tiny_model_learns_the_planted_motifs(grouped, single_thread):
    from promoter_modelling.lightning_module import MultiTaskDataModule, MultiTaskModule

    torch.manual_seed(0)
    model = MultiTaskModule(heads=[grouped.head.to_dict()], model_name="LegNet", model_size="tiny", lr=1e-2)
    settings = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False)
    data = MultiTaskDataModule([grouped])
    # not in inference mode: the metric states must stay usable by the training run below
    lightning.Trainer(inference_mode=False, **settings).validate(model, datamodule=data, verbose=False)
    before = {cell: model.last_metrics["val"][f"val_lentiMPRA_{cell}_PearsonR"] for cell in lentimpra.CELLS}
    lightning.Trainer(max_epochs=2, num_sanity_val_steps=0, **settings).fit(model, datamodule=data)
    metrics = model.last_metrics["val"]
    after = {cell: metrics[f"val_lentiMPRA_{cell}_PearsonR"] for cell in lentimpra.CELLS}
    assert all(math.isfinite(v) for v in after.values())
    assert math.isfinite(metrics["val_lentiMPRA_avg_epoch_loss"])
    assert metrics["val_lentiMPRA_mean_PearsonR"] == pytest.approx(np.mean(list(after.values())))
    best = max(after, key=after.get)
    assert after[best] > 0.5 and after[best] > before[best] + 0.3, (before, after)
