import math
import os

import numpy as np
import pandas as pd
import pytest

from promoter_modelling.errors import InputError
from promoter_modelling.tasks import fluorescence as fl
from promoter_modelling.tasks.base import LoaderSettings
from promoter_modelling.tasks.registry import build_task

COUNT_COLS = fl.REQUIRED_COUNT_COLUMNS


def seq_of(i: int, gc_pairs: int) -> str:
    body = "GC" * gc_pairs + "AT" * (125 - gc_pairs)
    return body[: 250 - 4] + "ACGT"[i % 4] * 4


def write_six_rows(directory, counts: np.ndarray, sums_low_row: int = 5) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    seqs = [seq_of(i, 20 + 10 * i) for i in range(6)]
    table = pd.DataFrame(counts, columns=COUNT_COLS)
    table.insert(0, "sequence", seqs)
    for cell in fl.CELLS:
        for r in fl.REPLICATES:
            p4, p7 = fl.count_columns(cell, r)
            table[f"{cell[0]}{r}_sum"] = table[p4] + table[p7]
    table.loc[sums_low_row, "J1_sum"] = 2  # below min_reads: filtered out
    table["cum_sum"] = 1000
    table.to_csv(os.path.join(directory, fl.COUNTS_FILE), index=False)
    provenance = ["a ~ type=random", "cell=K562 ~ type=designed ~ total_num_motifs=2",
                  "g ~ i ~ log2FoldChange=1.5 ~ p ~ description=JURKAT upregulated gene;x",
                  "g ~ i ~ log2FoldChange=-0.5 ~ p ~ description=THP1 downregulated;x",
                  "g ~ i ~ log2FoldChange=0.2 ~ p ~ description=housekeeping;x", "a ~ type=random"]
    classes = ["ClassIII", "ClassII", "ClassI", "ClassI", "ClassI", "ClassIII"]
    pd.DataFrame({"sequence": seqs, "class": classes, "final_provenance": provenance}).to_csv(
        os.path.join(directory, fl.SEQUENCES_FILE), sep="\t", index=False)
    return seqs


def test_targets_match_a_hand_computation_on_six_rows(tmp_path):
    rng = np.random.default_rng(3)
    counts = rng.integers(5, 200, size=(6, 12))
    seqs = write_six_rows(tmp_path / "FluorescenceData", counts)
    task = build_task("FluorescenceData", str(tmp_path), LoaderSettings(batch_size=4))
    task.prepare()
    merged = task.merged.set_index("sequence")
    assert len(merged) == 5 and seqs[5] not in merged.index  # min_reads filter
    kept = counts[:5].astype(float)
    column_totals = [sum(kept[row][col] + 1 for row in range(5)) for col in range(12)]
    for row in range(5):
        for cell in fl.CELLS:
            reps = []
            for r in range(2):
                p4 = COUNT_COLS.index(f"{cell[0]}{r + 1}_P4")
                p7 = COUNT_COLS.index(f"{cell[0]}{r + 1}_P7")
                ratio = ((kept[row][p4] + 1) / column_totals[p4]) / ((kept[row][p7] + 1) / column_totals[p7])
                reps.append(math.log2(ratio))
            assert merged.loc[seqs[row], cell] == pytest.approx(sum(reps) / 2, rel=1e-9)
    expected_class = ["ClassIII_random", "ClassII_K562_designed_2", "ClassI_JURKAT_up", "ClassI_THP1_down", "ClassI"]
    assert [merged.loc[s, "cell_specific_class"] for s in seqs[:5]] == expected_class
    gc = [(s.count("G") + s.count("C")) / 250 for s in seqs[:5]]
    np.testing.assert_allclose(merged.loc[seqs[:5], "GC_content"], gc)
    assert list(merged.loc[seqs[:5], "GC_content_bin"]) == [int(g // 0.05) for g in gc]


def test_zscore_option_standardises_each_cell(tmp_path):
    write_six_rows(tmp_path / "FluorescenceData", np.random.default_rng(4).integers(5, 90, size=(6, 12)))
    plain = build_task("FluorescenceData", str(tmp_path))
    plain.prepare()
    scored = build_task("FluorescenceData", str(tmp_path), zscore=True)
    scored.prepare()
    for cell in fl.CELLS:
        x = plain.merged[cell].to_numpy()
        np.testing.assert_allclose(scored.merged[cell], (x - x.mean()) / x.std(), rtol=1e-9)


def published_split(classes: np.ndarray, bins: np.ndarray, seed: int) -> dict:
    """The split as the published loader draws it: global seed, loops over class and GC bin."""
    np.random.seed(seed)
    df = pd.DataFrame({"c": classes, "b": bins})
    out = {"train": [], "val": [], "test": []}
    for cl in sorted(set(classes)):
        sub = df[df.c == cl]
        for b in range(20):
            idx = sub[sub.b == b].index.to_numpy()
            idx = idx[np.random.permutation(idx.shape[0])]
            n_tr = int(np.ceil(idx.shape[0] * 0.7))
            n_va = int(np.floor(idx.shape[0] * 0.1))
            out["train"] += list(idx[:n_tr])
            out["val"] += list(idx[n_tr:n_tr + n_va])
            out["test"] += list(idx[n_tr + n_va:])
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", [None, 3])
def test_split_is_stratified_disjoint_and_matches_the_published_membership(fluorescence_data_dir, seed):
    task = build_task("FluorescenceData", fluorescence_data_dir, split_seed=seed)
    task.prepare()
    m = task.merged
    flags = m[["is_train", "is_val", "is_test"]].to_numpy()
    assert (flags.sum(axis=1) == 1).all()  # disjoint and complete
    expected = published_split(m["cell_specific_class"].to_numpy(), m["GC_content_bin"].to_numpy(),
                               97 if seed is None else seed)
    for split in ("train", "val", "test"):
        assert list(np.flatnonzero(m[f"is_{split}"].to_numpy())) == expected[split]
    for (_, _), group in m.groupby(["cell_specific_class", "GC_content_bin"]):
        n = len(group)
        assert group["is_train"].sum() == math.ceil(0.7 * n)
        assert group["is_val"].sum() == math.floor(0.1 * n)
    assert len(task.train_dataset) == m["is_train"].sum()
    batch = next(iter(task.train_dataloader()))
    assert batch["x"].dtype.is_floating_point is False and batch["x"].shape[1] == 250
    assert batch["y"].shape[1] == 3


def test_seeded_splits_differ_and_live_in_their_own_cache(fluorescence_data_dir):
    a = build_task("FluorescenceData", fluorescence_data_dir, split_seed=0)
    b = build_task("FluorescenceData", fluorescence_data_dir, split_seed=1)
    a.prepare()
    b.prepare()
    assert a.cache_dir.endswith("FluorescenceData_seed_0") and b.cache_dir.endswith("FluorescenceData_seed_1")
    assert not (a.merged["is_train"] == b.merged["is_train"]).all()


def test_cache_is_rebuilt_when_parameters_or_inputs_change(tmp_path):
    counts = np.random.default_rng(5).integers(5, 90, size=(6, 12))
    write_six_rows(tmp_path / "FluorescenceData", counts)
    first = build_task("FluorescenceData", str(tmp_path))
    first.prepare()
    assert len(first.merged) == 5
    strict = build_task("FluorescenceData", str(tmp_path), min_reads=10**6)
    with pytest.raises(InputError, match="no sequence appears in both files"):
        strict.prepare()
    counts[5, :] = 500  # row 5 now passes the filter once J1_sum is fixed
    write_six_rows(tmp_path / "FluorescenceData", counts, sums_low_row=0)
    again = build_task("FluorescenceData", str(tmp_path))
    again.prepare()
    assert len(again.merged) == 5 and again.merged["sequence"].iloc[-1] == seq_of(5, 70)


def test_classification_labels_are_above_the_median(fluorescence_data_dir):
    reg = build_task("FluorescenceData", fluorescence_data_dir)
    cls = build_task("FluorescenceData_classification", fluorescence_data_dir)
    reg.prepare()
    cls.prepare()
    assert cls.head.name == "Fluorescence_classification" and cls.head.kind == "binary"
    counts = fl.read_counts(os.path.join(reg.raw_dir, fl.COUNTS_FILE))
    targets = fl.log_ratio_targets(fl.normalise_counts(counts, 5))
    for cell in fl.CELLS:
        median = np.median(targets[cell])
        np.testing.assert_array_equal(cls.merged[cell].to_numpy(), (reg.merged[cell].to_numpy() > median).astype(float))


@pytest.mark.parametrize("problem, message", [
    ("missing_column", r"missing column\(s\) K2_P7"),
    ("empty", "file is empty"),
    # the bad promoter is the 2nd counts row but the 5th data row (file row 6) of the reversed sequence table
    ("bad_base", r"final_list_of_all_promoter_sequences_fixed.tsv: row 6 has invalid character 'X' at position 7"),
    ("nan_count", r"row 4, column J2_P4: count 'nan' is not a non-negative number"),
])
def test_bad_input_gets_a_one_line_error_naming_file_and_problem(tmp_path, problem, message):
    raw = tmp_path / "FluorescenceData"
    write_six_rows(raw, np.random.default_rng(1).integers(5, 90, size=(6, 12)))
    counts_path = raw / fl.COUNTS_FILE
    table = pd.read_csv(counts_path)
    if problem == "missing_column":
        table.drop(columns=["K2_P7"]).to_csv(counts_path, index=False)
    elif problem == "empty":
        counts_path.write_text("")
    elif problem == "nan_count":
        table.loc[2, "J2_P4"] = np.nan
        table.to_csv(counts_path, index=False)
    else:
        seqs = pd.read_csv(raw / fl.SEQUENCES_FILE, sep="\t")
        for frame in (seqs, table):
            frame.loc[1, "sequence"] = frame.loc[1, "sequence"][:7] + "X" + frame.loc[1, "sequence"][8:]
        seqs.iloc[::-1].to_csv(raw / fl.SEQUENCES_FILE, sep="\t", index=False)
        table.to_csv(counts_path, index=False)
    task = build_task("FluorescenceData", str(tmp_path))
    with pytest.raises(InputError, match=message) as err:
        task.prepare()
    assert "\n" not in str(err.value)
    assert fl.COUNTS_FILE in str(err.value) or fl.SEQUENCES_FILE in str(err.value)
    assert not os.path.exists(os.path.join(task.cache_dir, "merged.tsv"))
