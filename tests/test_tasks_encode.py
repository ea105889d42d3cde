"""ENCODETFChIPSeq: metadata filters, peak grouping, regions, negatives, masks, errors, training."""

from __future__ import annotations

import gzip
import math
import os

import lightning
import numpy as np
import pandas as pd
import pytest
from conftest import read_fasta_text

from promoter_modelling.errors import InputError
from promoter_modelling.fixtures import encode as encode_fixture
from promoter_modelling.fixtures.genome import ensure_genome
from promoter_modelling.sequence import decode
from promoter_modelling.tasks import encode
from promoter_modelling.tasks.chromosome_split import TEST_CHROMOSOMES, TRAIN_CHROMOSOMES, VAL_CHROMOSOMES


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("encode"))
    ensure_genome(root, "hg38", chrom_length=20_000)
    encode_fixture.generate(root, np.random.default_rng(0), peaks_per_dataset=70, site_fraction=0.5)
    return root


@pytest.fixture(scope="module")
def task(data_dir):
    built = encode.ENCODETFChIPSeq(data_dir, batch_size=64, min_num_peaks=60)
    built.prepare()
    return built


def test_grouping_by_hand():
    # chr1 summits; offset 100: [100, 150, 199] | [201] | [350, 420, 421]; chr2 [5]; chr10 [7, 107] | [108]
    chroms = np.array(["chr1"] * 7 + ["chr10", "chr2", "chr10", "chr10"])
    pos = np.array([421, 100, 201, 150, 350, 199, 420, 107, 5, 7, 108])
    codes, names = encode.chromosome_order(chroms)
    assert names == ["chr1", "chr2", "chr10"]  # numeric, not lexicographic, order
    order, group = encode.group_peaks(codes, pos, 100)
    assert pos[order].tolist() == [100, 150, 199, 201, 350, 420, 421, 5, 7, 107, 108]
    assert group.tolist() == [0, 0, 0, 1, 2, 2, 2, 3, 4, 4, 5]
    peaks = pd.DataFrame({"chromosome": chroms, "position": pos, "output": [0, 1, 2, 0, 1, 1, 0, 2, 2, 0, 1]})
    table, indptr, outputs = encode.summarise_groups(order, group, peaks, 3, 600)
    # means 149.67 -> 150, 201, 397, 5, 57 (107 + 7 = 114 / 2), 108; ties round to even
    assert table["avg_peak_position"].tolist() == [150, 201, 397, 5, 57, 108]
    assert table["extraction_region_start"].tolist() == [a - 300 for a in [150, 201, 397, 5, 57, 108]]
    assert table["num_peaks"].tolist() == [3, 1, 3, 1, 2, 1]
    # group 0 = {100: 1, 150: 0, 199: 1} -> outputs 0, 1 (each once); group 2 = {350: 1, 420: 0, 421: 0}
    assert [outputs[indptr[g]:indptr[g + 1]].tolist() for g in range(6)] == [[0, 1], [2], [0, 1], [2], [0, 2], [1]]
    half = pd.DataFrame({"chromosome": ["chr1", "chr1"], "position": [10, 11], "output": [0, 0]})
    o, g = encode.group_peaks(np.zeros(2, int), half["position"].to_numpy(), 100)
    assert encode.summarise_groups(o, g, half, 1, 600)[0]["avg_peak_position"].tolist() == [10]  # 10.5 -> 10


def test_masks_and_targets_by_hand():
    positives = np.zeros((3, 4), np.uint8)
    negatives = np.ones((3, 4), np.uint8)
    indptr = np.array([0, 2, 3, 5])
    outputs = np.array([0, 3, 1, 0, 2])
    dataset = encode.PeakGroupDataset(positives, negatives, indptr, outputs, np.array([2, 0]), num_outputs=4)
    batch = dataset.__getitems__([0, 1, 2, 3])  # group 2 +, group 2 -, group 0 +, group 0 -
    np.testing.assert_array_equal(batch["x"].numpy()[:, 0], [0, 1, 0, 1])
    np.testing.assert_array_equal(batch["mask"].numpy(), [[1, 0, 1, 0], [1, 0, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1]])
    np.testing.assert_array_equal(batch["y"].numpy(), [[1, -1, 1, -1], [0, -1, 0, -1], [1, -1, -1, 1],
                                                       [0, -1, -1, 0]])
    assert batch["y"].dtype.__str__() == "torch.float32" and batch["mask"].dtype.__str__() == "torch.bool"


def reference_groups(data_dir: str, min_num_peaks: int) -> tuple[list[str], list[tuple[str, int, set]]]:
    """The published procedure written out with a plain loop (numeric order per chromosome)."""
    meta = pd.read_csv(f"{data_dir}/ENCODETFChIPSeq_data/metadata.tsv", sep="\t")
    meta = meta[meta["File assembly"] == "GRCh38"]
    dup = [i for _, grp in meta.groupby("Experiment accession") if len(grp) > 1
           for i, row in grp.iterrows() if row["File analysis title"] == "ENCODE3 GRCh38"]
    meta = meta.drop(dup)
    frames = []
    for _, row in meta.iterrows():
        bed = pd.read_csv(f"{data_dir}/ENCODETFChIPSeq_data/{row['File accession']}.bed.gz", sep="\t", header=None)
        bed = bed[bed[8] >= -np.log10(0.05)]
        if len(bed) >= min_num_peaks:
            frames.append(pd.DataFrame({"chrom": bed[0], "pos": bed[1] + bed[9],
                                        "name": f"{row['Biosample term name']}_{row['Experiment target']}_"
                                                f"{row['File accession']}"}))
    peaks = pd.concat(frames)
    names = sorted(set(peaks["name"]))
    peaks = peaks[peaks["chrom"].isin([f"chr{i}" for i in range(1, 23)])]
    groups = []
    for chrom in [f"chr{i}" for i in range(1, 23)]:
        here = peaks[peaks["chrom"] == chrom].sort_values("pos", kind="stable")
        current = None
        for pos, name in zip(here["pos"], here["name"]):
            if current is not None and pos <= current[0] + 100:
                current[1].append(pos)
                current[2].add(name)
            else:
                if current is not None:
                    groups.append((chrom, int(np.round(np.mean(current[1]))), current[2]))
                current = [pos, [pos], {name}]
        if current is not None:
            groups.append((chrom, int(np.round(np.mean(current[1]))), current[2]))
    return names, groups


def test_groups_match_reference_loop(task, data_dir):
    names, groups = reference_groups(data_dir, 60)
    assert task.head.output_names == names == sorted(names)
    assert not any("SMALL" in n or "MAX-human" in n for n in names)  # too few peaks / hg19
    table = task.group_table()
    assert len(table) == len(groups)
    assert table["chromosome"].tolist() == [g[0] for g in groups]
    assert table["avg_peak_position"].tolist() == [g[1] for g in groups]
    dataset_groups = []
    for split in ("train", "val", "test"):
        dataset = getattr(task, f"{split}_dataset")
        dataset_groups += list(dataset.groups)
        batch = dataset.__getitems__(list(range(0, len(dataset), 2)))
        for row, g in zip(batch["mask"].numpy(), dataset.groups):
            assert {names[i] for i in np.flatnonzero(row)} == groups[g][2]
    assert sorted(dataset_groups) == list(range(len(groups)))


def test_regions_negatives_and_splits(task, data_dir):
    text = {k: v.upper() for k, v in read_fasta_text(f"{data_dir}/common/hg38.fa").items()}
    table = task.group_table()
    batch = task.train_dataset.__getitems__(list(range(20)))
    for i in range(10):
        row = table.iloc[int(task.train_dataset.groups[i])]
        avg, chrom = int(row["avg_peak_position"]), text[row["chromosome"]]
        assert decode(batch["x"][2 * i:2 * i + 1].numpy())[0] == chrom[avg - 301:avg + 299]  # published coordinates
        pos, neg = batch["x"][2 * i].numpy().astype(int), batch["x"][2 * i + 1].numpy().astype(int)
        assert np.array_equal(np.bincount(pos[:-1] * 5 + pos[1:], minlength=25),
                              np.bincount(neg[:-1] * 5 + neg[1:], minlength=25))
        assert pos[0] == neg[0] and pos[-1] == neg[-1] and not np.array_equal(pos, neg)
    assert batch["x"].shape == (20, 600) and str(batch["x"].dtype) == "torch.uint8"
    for split, allowed in (("train", TRAIN_CHROMOSOMES), ("val", VAL_CHROMOSOMES), ("test", TEST_CHROMOSOMES)):
        chroms = table.iloc[getattr(task, f"{split}_dataset").groups]["chromosome"].str[3:]
        assert chroms.isin(allowed).all() and len(chroms) > 0


def test_negatives_are_deterministic(task):
    seeds = 97 + np.arange(5)
    codes = np.asarray(task.train_dataset.positives[:5])
    first = encode.dinucleotide_shuffle_codes(codes, seeds)
    assert np.array_equal(first, encode.dinucleotide_shuffle_codes(codes, seeds))
    assert np.array_equal(first[2:], encode.dinucleotide_shuffle_codes(codes[2:], seeds[2:]))  # batching-invariant
    assert np.array_equal(np.asarray(task.train_dataset.negatives[:5]), first)


def test_shrink_test_set(data_dir, task):
    small = encode.ENCODETFChIPSeq(data_dir, min_num_peaks=60, shrink_test_set=True)
    small.prepare()
    assert len(small.val_dataset) == len(small.test_dataset) == 10
    assert len(small.train_dataset) == len(task.train_dataset)
    batch = next(iter(small.test_dataloader()))
    assert batch["x"].shape == (10, 600) and batch["mask"].shape == (10, len(task.head.output_names))


def test_missing_manual_download_is_one_line(tmp_path):
    with pytest.raises(InputError) as err:
        encode.ENCODETFChIPSeq(str(tmp_path)).prepare()
    message = str(err.value)
    assert "\n" not in message
    assert os.path.join(str(tmp_path), "ENCODETFChIPSeq_data", "metadata.tsv") in message
    assert encode.ARCHIVE_URL in message and ".bed.gz" in message


def test_missing_and_corrupt_peak_files(tmp_path, data_dir):
    raw = tmp_path / "ENCODETFChIPSeq_data"
    raw.mkdir()
    meta = pd.read_csv(f"{data_dir}/ENCODETFChIPSeq_data/metadata.tsv", sep="\t", dtype=str)
    meta.to_csv(raw / "metadata.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="none of the .* peak files"):
        encode.collect_peaks(str(raw), encode.read_metadata(str(raw / "metadata.tsv")), 0.05, 10, ["chr1"])
    accession = meta["File accession"].iloc[0]
    with gzip.open(raw / f"{accession}.bed.gz", "wt") as handle:
        handle.write("chr1\t10\t20\t.\t0\t.\t1\t1\tnot_a_number\t5\n")
    with pytest.raises(InputError, match=f"{accession}.bed.gz: line 1"):
        encode.collect_peaks(str(raw), encode.read_metadata(str(raw / "metadata.tsv")), 0.05, 10, ["chr1"])


def test_tiny_model_trains_one_epoch(tmp_path):
    from promoter_modelling.lightning_module import MultiTaskDataModule, MultiTaskModule

    ensure_genome(str(tmp_path), "hg38", chrom_length=20_000)
    encode_fixture.generate(str(tmp_path), np.random.default_rng(1), peaks_per_dataset=70, site_fraction=0.5)
    # a few chromosomes and 200-bp regions keep the epoch short on a CPU
    small = encode.ENCODETFChIPSeq(str(tmp_path), batch_size=128, min_num_peaks=60, region_size=200,
                                   train_chromosomes=["1", "3", "5"], val_chromosomes=["4"], test_chromosomes=["2"])
    small.prepare()
    model = MultiTaskModule(heads=[small.head.to_dict()], model_name="MTLucifer", model_size="tiny", lr=1e-3)
    lightning.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, num_sanity_val_steps=0).fit(model, MultiTaskDataModule([small]))
    metrics = model.last_metrics["val"]
    assert math.isfinite(metrics["val_ENCODETFChIPSeq_avg_epoch_loss"])
    for met in ("Accuracy", "Precision", "Recall", "F1"):
        assert math.isfinite(metrics[f"val_ENCODETFChIPSeq_{met}"])
