"""SuRE: expression bins, SNP substitution on both strands, GC-matched subsampling, padding."""

from __future__ import annotations

import gzip
import io
import math
import zipfile

import lightning
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import read_fasta_text

from promoter_modelling.errors import InputError
from promoter_modelling.fixtures import sure as sure_fixture
from promoter_modelling.fixtures.genome import ensure_genome
from promoter_modelling.sequence import PAD_CODE, decode
from promoter_modelling.tasks import sure
from promoter_modelling.tasks.base import LoaderSettings
from promoter_modelling.tasks.registry import build_task, expand_task_names

GENOME = "SuRE42_HG02601"
_RC = str.maketrans("ACGTN", "TGCAN")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("sure"))
    ensure_genome(root, "hg19", chrom_length=10_000)
    sure_fixture.generate(root, np.random.default_rng(0), fragments_per_file=12, min_len=100, max_len=200,
                          genomes=[GENOME])
    return root


SIZES = {"num_train": 150, "num_val": 50, "num_test": 50}


@pytest.fixture(scope="module")
def task(data_dir):
    built = build_task(f"SuRE_classification_{GENOME}", data_dir, LoaderSettings(batch_size=32), **SIZES)
    built.prepare()
    return built


def raw_rows(data_dir: str) -> pd.DataFrame:
    """Every row of every file in the genome's zip, with its file name."""
    frames = []
    with zipfile.ZipFile(f"{data_dir}/SuRE_data/{GENOME}.zip") as archive:
        for name in archive.namelist():
            text = gzip.decompress(archive.read(name)).decode()
            frames.append(pd.read_csv(io.StringIO(text), sep="\t", dtype={"SNPrelpos": str, "SNPbaseInf": str})
                          .assign(file=name))
    return pd.concat(frames, ignore_index=True)


def test_expression_classes_by_hand():
    avg = np.array([0.0, 0.001, 10.0, 10.01, 20.0, 25.0, 30.0, 30.5, 1000.0])
    assert sure.expression_classes(avg).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert sure.gc_bins(np.array([0.0, 0.049999, 0.05, 0.5, 0.99, 1.0])).tolist() == [0, 0, 1, 10, 19, 20]


def test_snp_substitution_on_both_strands():
    # reference fragment (genomic order) AACCG; SNP at relative position 1 with plus-strand base G
    codes = {"A": 0, "C": 1, "G": 2, "T": 3}
    plus = np.array([codes[b] for b in "AACCG"], np.uint8)
    minus = np.array([codes[b] for b in "CGGTT"], np.uint8)  # stored reverse-complemented
    flat = np.concatenate([plus, minus])
    offsets = np.array([0, 5, 10])
    args = (np.array([False, True]), np.array([0, 1]), np.array([1, 1]), np.array([2, 2], np.uint8))
    fixed = sure.substitute_snps(flat.copy(), offsets, *args)
    assert decode(fixed[None, :5])[0] == "AGCCG"
    assert decode(fixed[None, 5:])[0] == "CGGCT"  # reverse complement of AGCCG
    published = sure.substitute_snps(flat.copy(), offsets, *args, complement_minus=False)
    assert decode(published[None, 5:])[0] == "CGGGT"
    with pytest.raises(InputError, match="outside its 5-bp fragment"):
        sure.substitute_snps(flat.copy(), offsets, np.array([False, True]), np.array([0]), np.array([5]),
                             np.array([1], np.uint8))


def test_parse_snps():
    indptr, pos, base = sure.parse_snps(pd.Series([None, "3", "1,7"]), pd.Series([None, "T", "A,G"]), "f")
    assert indptr.tolist() == [0, 0, 1, 3] and pos.tolist() == [3, 1, 7] and base.tolist() == [3, 0, 2]
    with pytest.raises(InputError, match="row 2"):
        sure.parse_snps(pd.Series(["1,2"]), pd.Series(["A"]), "f")


def published_subsample(k562, hepg2, gc, num_train, num_val, num_test):
    """The published per-bin loop, written with pandas and the global numpy seed."""
    df = pd.DataFrame({"K562_bin": k562, "HepG2_bin": hepg2, "GC_content": gc, "row": np.arange(len(gc))})
    gc_bin = np.floor(df["GC_content"] / 0.05).astype(int)
    counts = np.array([(gc_bin == k).sum() for k in range(20)])
    frac = counts / counts.sum()
    desired = [int(np.floor(n / 25)) for n in (num_train, num_val, num_test)]
    out = {"train": [], "val": [], "test": []}
    for i in range(5):
        for j in range(5):
            part = df[(df["K562_bin"] == i) & (df["HepG2_bin"] == j)].reset_index(drop=True)
            part["GC_content_bin"] = np.floor(part["GC_content"] / 0.05).astype(int)
            np.random.seed(97)
            part = part.iloc[np.random.permutation(part.shape[0])]
            for k in range(20):
                subset = part[part["GC_content_bin"] == k]
                n_train, n_val, n_test = (int(np.around(frac[k] * d)) for d in desired)
                if n_train + n_val + n_test > subset.shape[0]:
                    n_train = subset.shape[0] - n_val - n_test
                    if n_train < 0:
                        n_train = int(np.floor(subset.shape[0] / 3))
                        n_val = int(np.floor(subset.shape[0] / 3))
                        n_test = subset.shape[0] - n_train - n_val
                out["train"] += subset["row"].iloc[:n_train].tolist()
                out["val"] += subset["row"].iloc[n_train:n_train + n_val].tolist()
                out["test"] += subset["row"].iloc[n_train + n_val:n_train + n_val + n_test].tolist()
    return out


def test_gc_matched_subsample_matches_published_loop():
    rng = np.random.default_rng(3)
    n = 4000
    k562 = rng.choice(5, size=n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    hepg2 = rng.choice(5, size=n, p=[0.35, 0.35, 0.15, 0.1, 0.05])
    gc = np.clip(rng.normal(0.42, 0.08, size=n), 0, 1)
    ours = sure.gc_matched_subsample(k562 * 5 + hepg2, sure.gc_bins(gc), 1500, 250, 250)
    reference = published_subsample(k562, hepg2, gc, 1500, 250, 250)
    for split in ("train", "val", "test"):
        assert ours[split].tolist() == reference[split]
    assert not set(ours["train"]) & set(ours["val"]) and not set(ours["val"]) & set(ours["test"])


def test_sequences_bins_and_snps_match_raw_files(task, data_dir):
    raw = raw_rows(data_dir)
    text = {k: v.upper() for k, v in read_fasta_text(f"{data_dir}/common/hg19.fa").items()}
    k562 = [c for c in raw.columns if c.startswith("SuRE") and "HEPG2" not in c]
    hepg2 = [c for c in raw.columns if "HEPG2" in c]
    checked = 0
    for split in ("train", "val", "test"):
        table = task.split_table(split)
        merged = table.merge(raw, on=["file", "chr", "start", "end", "strand"], how="left", validate="one_to_one")
        assert merged["SNPrelpos"].notna().sum() > 0
        dataset = getattr(task, f"{split}_dataset")
        for i, row in enumerate(merged.itertuples()):
            seq = list(text[row.chr][row.start - 1:row.end])
            if isinstance(row.SNPrelpos, str):
                for p, b in zip(row.SNPrelpos.split(","), row.SNPbaseInf.split(",")):
                    seq[int(p)] = b
            seq = "".join(seq)
            if row.strand == "-":
                seq = seq.translate(_RC)[::-1]  # complementing the SNP base with the fragment
            item = dataset[i]
            assert decode(item["x"].numpy()[None])[0] == seq
            expected = [min(math.ceil(np.mean([getattr(row, c) for c in cols]) / 10), 4) for cols in (k562, hepg2)]
            assert item["y"].tolist() == expected
            checked += 1
    assert checked > 30
    ambiguous = raw[raw["SNPbaseInf"].fillna("").str.contains("[RYN]")]
    kept = pd.concat([task.split_table(s) for s in ("train", "val", "test")])
    assert len(ambiguous) > 0
    assert not kept.merge(ambiguous, on=["file", "start", "end", "strand"]).shape[0]


def test_padded_batches(task):
    batch = next(iter(task.train_dataloader()))
    lengths = torch.tensor([len(task.train_dataset[i]["x"]) for i in range(len(task.train_dataset))])
    assert batch["x"].dtype == torch.uint8 and batch["y"].dtype == torch.int64 and batch["y"].shape[1] == 2
    assert lengths.min() < lengths.max()
    assert batch["x"].shape[1] == int((batch["x"] != PAD_CODE).sum(dim=1).max())
    pad = sure.pad_collate([{"x": torch.tensor([0, 1, 2], dtype=torch.uint8), "y": torch.tensor([1, 2])},
                            {"x": torch.tensor([3], dtype=torch.uint8), "y": torch.tensor([0, 4])}])
    assert pad["x"].tolist() == [[0, 1, 2], [3, PAD_CODE, PAD_CODE]] and pad["y"].tolist() == [[1, 2], [0, 4]]


def test_groups_regression_and_shrink(task, data_dir):
    assert expand_task_names("SuRE_classification") == [f"SuRE_classification_{g}" for g in sure.GENOME_IDS]
    assert len(expand_task_names("SuRE_regression")) == 4
    regression = build_task(f"SuRE_regression_{GENOME}", data_dir, LoaderSettings(batch_size=16, shrink_test_set=True),
                            **SIZES)
    regression.prepare()
    assert regression.head.name == task.head.name == f"SuRE_{GENOME}"
    assert regression.head.output_names == ["avg_K562_exp", "avg_HepG2_exp"]
    assert task.head.kind == "grouped_multiclass" and task.head.num_classes == 5
    assert len(regression.val_dataset) == len(regression.test_dataset) == 10
    batch = next(iter(regression.val_dataloader()))
    table = task.split_table("val").iloc[:10]
    np.testing.assert_allclose(batch["y"].numpy(), table[["avg_K562_exp", "avg_HepG2_exp"]].to_numpy(), rtol=1e-5)
    assert batch["y"].dtype == torch.float32


def test_unknown_genome_and_missing_columns(tmp_path):
    with pytest.raises(InputError, match="unknown SuRE genome"):
        sure.SuRE(str(tmp_path), genome_id="SuRE99")
    path = tmp_path / "bad.txt.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("chr\tstart\tend\tstrand\tSuRE42_B1\nchr1\t1\t5\t+\t3\n")
    with pytest.raises(InputError, match="missing column"):
        sure.read_fragments(str(path), genome=None)


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_tiny_model_trains_one_epoch(data_dir, kind):
    from promoter_modelling.lightning_module import MultiTaskDataModule, MultiTaskModule

    small = build_task(f"SuRE_{kind}_{GENOME}", data_dir, LoaderSettings(batch_size=64), **SIZES)
    small.prepare()
    model = MultiTaskModule(heads=[small.head.to_dict()], model_name="MTLucifer", model_size="tiny", lr=1e-3)
    lightning.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, num_sanity_val_steps=0).fit(model, MultiTaskDataModule([small]))
    metrics = model.last_metrics["val"]
    name = f"SuRE_{GENOME}"
    assert math.isfinite(metrics[f"val_{name}_avg_epoch_loss"])
    outputs = ["K562_bin", "HepG2_bin"] if kind == "classification" else ["avg_K562_exp", "avg_HepG2_exp"]
    mets = ["Accuracy", "Precision", "Recall", "F1"] if kind == "classification" else ["MSE", "MAE", "R2", "PearsonR",
                                                                                      "SpearmanR"]
    for met in mets:
        assert f"val_{name}_mean_{met}" in metrics
        for output in outputs:
            assert f"val_{name}_{output}_{met}" in metrics
