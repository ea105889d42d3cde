"""RNA-seq tasks (LL100, CCLE, Roadmap): preprocessing against numpy/scipy, splits, batches."""

from __future__ import annotations

import math

import lightning
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from promoter_modelling.errors import InputError
from promoter_modelling.fixtures import rnaseq as rnaseq_fixture
from promoter_modelling.fixtures.genome import ensure_genome
from promoter_modelling.genome import Genome, promoter_windows
from promoter_modelling.tasks import rnaseq
from promoter_modelling.tasks.base import LoaderSettings
from promoter_modelling.tasks.chromosome_split import TEST_CHROMOSOMES, TRAIN_CHROMOSOMES, VAL_CHROMOSOMES, split_lists
from promoter_modelling.tasks.registry import build_task, expand_task_names

WINDOWS = [(-300, -50), (-100, 150), (100, 350)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("rnaseq"))
    ensure_genome(root, "hg38", chrom_length=10_000)
    rnaseq_fixture.generate(root, np.random.default_rng(0), num_ll100_cells=6, num_ccle_cells=5)
    return root


@pytest.fixture(scope="module")
def tasks(data_dir):
    built = [build_task(name, data_dir, LoaderSettings(batch_size=96), zscore=True) for name in expand_task_names("RNASeq")]
    for task in built:
        task.prepare()
    return {t.task_name: t for t in built}


def test_group_and_heads(tasks):
    assert expand_task_names("RNASeq") == ["LL100", "CCLE", "Roadmap"]
    assert [t.head.name for t in tasks.values()] == ["LL100", "CCLE", "Roadmap"]
    assert tasks["Roadmap"].head.output_names[-3:] == ["K562", "NHEK", "NHLF"]  # E123, E127, E128
    assert len(tasks["Roadmap"].head.output_names) == 57
    assert tasks["LL100"].head.output_names == [f"LL{i:02d}-CELL" for i in range(6)]


def expected_ll100(data_dir: str) -> pd.DataFrame:
    """The LL100 pipeline written out directly with pandas / scipy."""
    raw = pd.read_csv(f"{data_dir}/LL-100/rsem.merged.gene_tpm.tsv", sep="\t")
    cells = list(raw.columns[2:])
    raw = raw[raw[cells].sum(axis=1) >= 1.0 * len(cells)]
    logged = np.log2(raw[cells] + 1)
    ens = pd.read_csv(f"{data_dir}/common/ensembl_data.txt", sep="\t", dtype={"Chromosome/scaffold name": str})
    ens = ens.drop_duplicates("Gene stable ID")
    merged = pd.concat([raw[["gene_id"]], logged], axis=1).merge(ens, left_on="gene_id", right_on="Gene name")
    merged = merged[merged["Chromosome/scaffold name"].isin([str(i) for i in range(1, 23)])].reset_index(drop=True)
    for cell in cells:
        merged[cell] = scipy.stats.zscore(merged[cell].to_numpy())
    return merged


def test_ll100_targets_match_direct_computation(tasks, data_dir):
    task = tasks["LL100"]
    expected = expected_ll100(data_dir).set_index("Gene stable ID")
    table = task.gene_table().set_index("Gene stable ID")
    assert sorted(table.index) == sorted(expected.index)
    cells = task.head.output_names
    np.testing.assert_allclose(table.loc[expected.index, cells].to_numpy(), expected[cells].to_numpy(), atol=1e-9)
    # the silent genes and the genes on X / Y / MT are gone
    assert not table["Chromosome/scaffold name"].isin(["X", "Y", "MT"]).any()


def test_filter_log_zscore_by_hand():
    keys = np.array(["a", "b", "c", "d", "e"])
    values = np.array([[0.5, 2.0], [3.0, 1.0], [1.0, 0.9], [7.0, 15.0], [1.0, 1.0]])  # c: 1.9 < 2 -> dropped
    ensembl = pd.DataFrame({"Gene stable ID": ["E_a", "E_b", "E_c", "E_d", "E_e"], "Gene name": list(keys),
                            "Chromosome/scaffold name": ["1", "4", "2", "X", "3"],
                            "Transcription start site (TSS)": [10] * 5, "Strand": [1] * 5})
    table = rnaseq.build_gene_table(keys, values, ["c1", "c2"], ensembl, "Gene name", False, 1.0, True, split_lists())
    assert table["Gene name"].tolist() == ["a", "b", "e"]  # d is on X
    assert table["split"].tolist() == ["train", "val", "train"]
    logged = np.log2(np.array([[0.5, 2.0], [3.0, 1.0], [1.0, 1.0]]) + 1)
    z = (logged - logged.mean(0)) / logged.std(0)
    np.testing.assert_allclose(table[["c1", "c2"]].to_numpy(), z)
    # CCLE-style input is already log2(x+1): the filter back-transforms, no second log
    table = rnaseq.build_gene_table(keys, np.log2(values + 1), ["c1", "c2"], ensembl, "Gene name", True, 1.0, False,
                                    split_lists())
    np.testing.assert_allclose(table[["c1", "c2"]].to_numpy(), logged)


def test_ccle_duplicate_columns_summed_as_tpm():
    values = np.log2(np.array([[1.0, 3.0, 4.0], [0.0, 1.0, 2.0]]) + 1)
    summed, ids = rnaseq.sum_duplicate_columns(values, np.array(["E1", "E2", "E1"]), log_scale=False)
    assert ids.tolist() == ["E1", "E2"]
    np.testing.assert_allclose(summed, np.log2(np.array([[5.0, 3.0], [2.0, 1.0]]) + 1))
    published, _ = rnaseq.sum_duplicate_columns(values, np.array(["E1", "E2", "E1"]), log_scale=True)
    np.testing.assert_allclose(published[:, 0], values[:, 0] + values[:, 2])


def test_ccle_merges_models_and_split_gene(tasks, data_dir):
    task = tasks["CCLE"]
    assert task.head.output_names == [f"CCLE{i}" for i in range(5)][::-1]  # Model.csv order, model 5 has no data
    raw = pd.read_csv(f"{data_dir}/CCLE/OmicsExpressionProteinCodingGenesTPMLogp1.csv", index_col=0)
    # GENE1 is split over two Entrez ids: their TPMs add up again
    tpm = np.exp2(raw["GENE1 (1001)"]) - 1 + np.exp2(raw["GENE1 (99999)"]) - 1
    keys, values, cells = task.read_expression()
    row = list(keys).index("ENSG00000000001")
    models = pd.read_csv(f"{data_dir}/CCLE/Model.csv").set_index("StrippedCellLineName")["ModelID"]
    np.testing.assert_allclose(values[row], np.log2(tpm.loc[models.loc[cells]].to_numpy() + 1))


def test_chromosome_splits_are_disjoint(tasks):
    table = tasks["Roadmap"].gene_table()
    chrom = table["Chromosome/scaffold name"].astype(str)
    for split, allowed in (("train", TRAIN_CHROMOSOMES), ("val", VAL_CHROMOSOMES), ("test", TEST_CHROMOSOMES)):
        assert chrom[table["split"] == split].isin(allowed).all()
    assert not set(TRAIN_CHROMOSOMES) & set(VAL_CHROMOSOMES) | set(TRAIN_CHROMOSOMES) & set(TEST_CHROMOSOMES)
    assert table["Gene stable ID"].is_unique
    with pytest.raises(InputError, match="both the train and the val split"):
        split_lists(["1", "4"], ["4"], ["2"])


def test_batches_and_windows(tasks, data_dir):
    task = tasks["LL100"]
    table = task.gene_table()
    train = table[table["split"] == "train"].reset_index(drop=True)
    assert len(task.train_dataset) == 3 * len(train)
    batch = next(iter(task.train_dataloader()))
    assert batch["x"].dtype.is_floating_point is False and str(batch["x"].dtype) == "torch.uint8"
    assert batch["x"].shape[1:] == (250,) and batch["y"].shape[1:] == (6,) and str(batch["y"].dtype) == "torch.float32"
    val = next(iter(task.val_dataloader()))
    assert val["x"].shape[1:] == (3, 250) and str(val["x"].dtype) == "torch.uint8"
    # item i of the training set is window i % 3 of gene i // 3, with that gene's targets
    genome = Genome(f"{data_dir}/common/hg38.fa")
    windows = promoter_windows(genome, ("chr" + train["Chromosome/scaffold name"]).to_numpy(),
                               train["Transcription start site (TSS)"].to_numpy(), train["Strand"].to_numpy(), WINDOWS)
    items = task.train_dataset.__getitems__(list(range(len(task.train_dataset))))
    np.testing.assert_array_equal(items["x"].numpy(), windows.reshape(-1, 250))
    np.testing.assert_allclose(items["y"].numpy()[::3], train[task.head.output_names].to_numpy(), rtol=1e-6)


def test_head_is_available_before_prepare(data_dir):
    task = rnaseq.LL100(data_dir)
    assert task.head.name == "LL100" and len(task.head.output_names) == 6


def test_cells_subset(data_dir):
    task = rnaseq.Roadmap(data_dir, cells=["K562", 0])
    task.prepare()
    assert task.head.output_names == ["K562", "Universal_Human_Reference"]
    assert task.val_dataset.y.shape[1] == 2
    with pytest.raises(InputError, match="unknown cell"):
        bad = rnaseq.Roadmap(data_dir, cells=["NOPE"])
        bad.prepare()


def test_tiny_model_trains_one_epoch(tasks):
    from promoter_modelling.lightning_module import MultiTaskDataModule, MultiTaskModule

    chosen = list(tasks.values())
    model = MultiTaskModule(heads=[t.head.to_dict() for t in chosen], model_name="MTLucifer", model_size="tiny", lr=1e-3)
    lightning.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, num_sanity_val_steps=0).fit(model, MultiTaskDataModule(chosen))
    metrics = model.last_metrics["val"]
    for name in ("LL100", "CCLE", "Roadmap"):
        assert math.isfinite(metrics[f"val_{name}_avg_epoch_loss"])
        for met in ("MSE", "MAE", "R2", "PearsonR", "SpearmanR"):
            assert f"val_{name}_mean_{met}" in metrics
    assert "val_Roadmap_K562_SpearmanR" in metrics and "val_LL100_LL00-CELL_MSE" in metrics
    assert math.isfinite(metrics["overall_val_loss"])
