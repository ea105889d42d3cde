"""STARRSeq: sequences on both coordinate conventions, outer merge, masks, splits, padding, errors, training."""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

import lightning
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import raises, read_fasta_text

from promoter_modelling.errors import InputError
from promoter_modelling.fixtures import starrseq as starrseq_fixture
from promoter_modelling.fixtures.genome import ensure_genome
from promoter_modelling.run_config import DataOptions
from promoter_modelling.sequence import PAD_CODE, decode
from promoter_modelling.tasks import starrseq
from promoter_modelling.tasks.base import LoaderSettings
from promoter_modelling.tasks.chromosome_split import TEST_CHROMOSOMES, TRAIN_CHROMOSOMES, VAL_CHROMOSOMES
from promoter_modelling.tasks.registry import build_task

_RC = str.maketrans("ACGTN", "TGCAN")
SPLIT_LISTS = {"train": (*TRAIN_CHROMOSOMES, "X", "Y"), "val": VAL_CHROMOSOMES, "test": TEST_CHROMOSOMES}
K562_BED, HEPG2_BED = starrseq.BED_FILES["K562"], starrseq.BED_FILES["HepG2"]


def revcomp(seq: str) -> str:
    return seq.translate(_RC)[::-1]


def fixture_root(tmp_path_factory, name: str, **options) -> str:
    root = str(tmp_path_factory.mktemp(name))
    ensure_genome(root, "hg38", chrom_length=20_000)
    starrseq_fixture.generate(root, np.random.default_rng(0), **options)
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    return fixture_root(tmp_path_factory, "starrseq", peaks_per_cell=400)


@pytest.fixture(scope="module")
def task(data_dir):
    built = build_task("STARRSeq", data_dir, LoaderSettings(batch_size=64))
    built.prepare()
    return built


def expected_rows(root: str, shift: int) -> dict[tuple, dict[str, float]]:
    """The published procedure written out with plain loops: every peak on a split chromosome,
    its sequence read from the FASTA text, merged on (sequence, chromosome, start, end)."""
    text = {k: v.upper() for k, v in read_fasta_text(f"{root}/common/hg38.fa").items()}
    allowed = {"chr" + c for chroms in SPLIT_LISTS.values() for c in chroms}
    rows: dict[tuple, dict[str, float]] = {}
    for cell, name in starrseq.BED_FILES.items():
        bed = pd.read_csv(f"{root}/STARRSeq/{name}", sep="\t", header=None, dtype={0: str, 5: str})
        assert bed.shape[1] == 11
        for chrom, start, end, strand, fold in zip(bed[0], bed[1], bed[2], bed[5], bed[6]):
            if chrom not in allowed:
                continue
            seq = text[chrom][start - shift:end - shift]
            seq = revcomp(seq) if strand == "-" else seq
            assert len(seq) == end - start
            rows.setdefault((seq, chrom, int(start), int(end)), {})[cell] = float(fold)
    return rows


@pytest.mark.parametrize("coordinates", ["bed", "published"])
def test_sequences_targets_and_splits_match_independent_extraction(tmp_path_factory, data_dir, task, coordinates,
                                                                   capsys):
    if coordinates == "bed":
        built = task
    else:  # a data directory of its own: the cache of the "bed" task stays as it is
        root = fixture_root(tmp_path_factory, "starrseq_published", peaks_per_cell=400)
        built = build_task("STARRSeq", root, LoaderSettings(batch_size=64), coordinates=coordinates)
        built.prepare()
        assert capsys.readouterr().out.count("dropped 8 peak(s) on contigs outside the split chromosome lists") == 1
        data_dir = root
    expected = expected_rows(data_dir, shift=1 if coordinates == "published" else 0)
    table = built.peak_table()
    assert list(table.columns) == ["sequence", "chromosome", "start", "end", "K562", "HepG2", "split"]
    assert len(table) == len(expected)
    for row in table.itertuples(index=False):
        values = expected[(row.sequence, row.chromosome, row.start, row.end)]
        for cell in ("K562", "HepG2"):
            got = getattr(row, cell)
            assert (math.isnan(got) and cell not in values) or got == values[cell]
    both = table["K562"].notna() & table["HepG2"].notna()
    assert both.sum() > 50 and (~both).sum() > 50  # shared peaks merged, the rest one-sided
    for split, chroms in SPLIT_LISTS.items():
        dataset = getattr(built, f"{split}_dataset")
        part = built.split_table(split)
        assert len(part) == len(dataset) > 0
        assert part["chromosome"].str[3:].isin(chroms).all()
        batch = dataset.__getitems__(list(range(len(dataset))))
        assert decode(batch["x"].numpy()) == part["sequence"].tolist()
        targets = part[["K562", "HepG2"]].to_numpy(np.float32)
        np.testing.assert_array_equal(batch["y"].numpy(), targets)  # NaN where a cell has no peak
        np.testing.assert_array_equal(batch["mask"].numpy(), ~np.isnan(targets))


def test_fixture_writes_the_raw_format(data_dir):
    for name in starrseq.BED_FILES.values():
        lines = open(f"{data_dir}/STARRSeq/{name}").read().splitlines()
        fields = [line.split("\t") for line in lines]
        assert {len(f) for f in fields} == {11} and not lines[0].startswith("chromosome")
        assert {f[5] for f in fields} == {".", "+", "-"}
        assert {f[0] for f in fields} & set(starrseq_fixture.OTHER_CONTIGS)
        lengths = np.array([int(f[2]) - int(f[1]) for f in fields])
        assert lengths.min() >= 150 and lengths.max() <= 600


# --- a tiny hand-written data set ----------------------------------------------------------
CHR1 = "ACGTTGCAAC" "ggatccttag" "CCATGGAACT" "TTGACCTCAA" "GCTAGCTTAA" "GAATTCAGGT"  # [50, 56) palindromic
GENOME = {"chr1": CHR1, "chr2": "TTTACGGACCATTGACGGTACCAGTCAGCA", "chr4": "GGGCATGCAATCGATCGTAGCTAGCTAGGCATCGACTAGC",
          "chrM": "ACGTACGTACGTACGTACGT"}


def bed_line(chrom: str, start: int, end: int, strand: str, fold: str | float) -> str:
    return f"{chrom}\t{start}\t{end}\t.\t0\t{strand}\t{fold}\t10\t5\t3.2\t2.1"


K562_LINES = [bed_line("chr1", 10, 20, "+", 1.5), bed_line("chr1", 30, 40, ".", 2.0), "",
              bed_line("chr4", 5, 25, "-", 3.0), bed_line("chrM", 1, 10, ".", 9.0), bed_line("chr1", 50, 56, "+", 1.0)]
HEPG2_LINES = [bed_line("chr1", 10, 20, ".", 4.0), bed_line("chr1", 30, 40, "-", 5.0), bed_line("chr2", 2, 12, ".", 6.0),
               bed_line("chr1_KI270706v1_random", 1, 5, ".", 7.0), bed_line("chr1", 50, 56, "-", 2.5)]


def tiny_root(tmp_path, k562_lines=K562_LINES, hepg2_lines=HEPG2_LINES) -> str:
    common, raw = tmp_path / "common", tmp_path / "STARRSeq"
    common.mkdir()
    raw.mkdir()
    (common / "hg38.fa").write_text("".join(f">{name}\n{seq}\n" for name, seq in GENOME.items()))
    (raw / K562_BED).write_text("\n".join(k562_lines) + "\n")
    (raw / HEPG2_BED).write_text("\n".join(hepg2_lines) + "\n")
    return str(tmp_path)


def test_outer_merge_masks_and_splits_by_hand(tmp_path, capsys):
    built = build_task("STARRSeq", tiny_root(tmp_path), LoaderSettings(batch_size=8))
    built.prepare()
    assert capsys.readouterr().out.strip() == ("STARRSeq: dropped 2 peak(s) on contigs outside the split chromosome "
                                               "lists (e.g. chrM)")
    chr1 = CHR1.upper()
    nan = float("nan")
    expected = {
        "train": [(chr1[10:20], 10, 20, 1.5, 4.0),  # "+" and "." read the same sequence: merged
                  (chr1[30:40], 30, 40, 2.0, nan),  # "." and "-" differ: two rows
                  (revcomp(chr1[30:40]), 30, 40, nan, 5.0),
                  (chr1[50:56], 50, 56, 1.0, 2.5)],  # palindromic: "+" and "-" read the same, merged
        "val": [(revcomp(GENOME["chr4"][5:25]), 5, 25, 3.0, nan)],
        "test": [(GENOME["chr2"][2:12], 2, 12, nan, 6.0)],
    }
    assert chr1[50:56] == revcomp(chr1[50:56])
    for split, rows in expected.items():
        part = built.split_table(split)
        assert list(zip(part["sequence"], part["start"], part["end"])) == [r[:3] for r in rows]
        targets = np.array([r[3:] for r in rows], dtype=np.float32)
        dataset = getattr(built, f"{split}_dataset")
        batch = dataset.__getitems__(list(range(len(dataset))))
        np.testing.assert_array_equal(batch["y"].numpy(), targets)
        np.testing.assert_array_equal(batch["mask"].numpy(), ~np.isnan(targets))
        assert decode(batch["x"].numpy()) == [r[0] for r in rows]
    assert built.head.output_names == ["K562", "HepG2"] and built.head.kind == "masked_regression"
    # published coordinates: one base upstream, same merge
    shifted = build_task("STARRSeq", str(tmp_path), coordinates="published")
    shifted.prepare()  # the coordinates are part of the cache fingerprint: rebuilt
    train = shifted.split_table("train")
    # [49, 55) is no palindrome: its "+" and "-" peaks now read different sequences and stay apart
    assert train["sequence"].tolist() == [chr1[9:19], chr1[29:39], revcomp(chr1[29:39]), chr1[49:55],
                                          revcomp(chr1[49:55])]
    assert train["K562"].notna().sum() == 3 and train["HepG2"].notna().sum() == 3


def test_padded_batches_equal_the_stored_codes(task):
    dataset = task.train_dataset
    lengths = dataset.lengths()
    rows = np.argsort(lengths)[[0, len(lengths) // 2, -1, 1]]  # shortest, middle, longest, second shortest
    batch = dataset.__getitems__(rows.tolist())
    x = batch["x"].numpy()
    assert batch["x"].dtype == torch.uint8 and x.shape == (4, lengths[rows].max())
    for i, row in enumerate(rows):
        n = lengths[row]
        np.testing.assert_array_equal(x[i, :n], dataset.flat[dataset.offsets[row]:dataset.offsets[row + 1]])
        assert (x[i, n:] == PAD_CODE).all()
    assert batch["y"].dtype == torch.float32 and batch["mask"].dtype == torch.bool
    assert batch["y"].shape == batch["mask"].shape == (4, 2)
    loader_batch = next(iter(task.val_dataloader()))  # through the task's loader and collate
    width = int(task.val_dataset.lengths()[:len(loader_batch["y"])].max())
    assert loader_batch["x"].shape == (min(64, len(task.val_dataset)), width)
    assert task.shrink_test_set is False


FIELDS = "(chromosome, start, end, name, score, strand, fold_change, output_coverage, input_coverage, log_pval, log_qval)"


@pytest.mark.parametrize("line, number, message", [
    ("\t".join(bed_line("chr1", 30, 40, ".", 2.0).split("\t")[:10]), 2, f"10 tab-separated field(s), expected 11 {FIELDS}"),
    (bed_line("chr1", 30, 40, ".", 2.0) + "\textra", 2, f"12 tab-separated field(s), expected 11 {FIELDS}"),
    (bed_line("chr1", "3.5", 40, ".", 2.0), 2, "start '3.5' is not an integer"),
    (bed_line("chr1", 30, "forty", ".", 2.0), 2, "end 'forty' is not an integer"),
    (bed_line("chr1", 40, 40, ".", 2.0), 2, "end 40 is not after start 40"),
    (bed_line("chr1", 30, 40, ".", "NA"), 2, "fold_change 'NA' is not a finite number"),
    (bed_line("chr1", 30, 40, ".", "inf"), 2, "fold_change 'inf' is not a finite number"),
    (bed_line("chr1", 30, 40, "*", 2.0), 2, "strand '*' is not +, - or ."),
    (bed_line("chr1", 30, 61, ".", 2.0), 2, "interval [30, 61) lies outside chromosome chr1 (length 60)"),
    (bed_line("chr1", -5, 10, ".", 2.0), 2, "interval [-5, 10) lies outside chromosome chr1 (length 60)"),
    (bed_line("chr7", 30, 40, ".", 2.0), 2, "chromosome chr7 is not in the genome ...hg38.fa"),
    (bed_line("chr4", 5, 25, "?", 3.0), 4, "strand '?' is not +, - or ."),  # line numbers count the blank line
])
def test_bad_bed_rows_are_one_line_errors_and_nothing_is_written(tmp_path, line, number, message):
    lines = list(K562_LINES)
    lines[number - 1] = line
    root = tiny_root(tmp_path, k562_lines=lines)
    raises(f"...{os.sep}STARRSeq{os.sep}{K562_BED}: line {number}: {message}", build_task("STARRSeq", root).prepare)
    left = os.listdir(os.path.join(root, "STARRSeq"))
    assert not [f for f in left if f.endswith(".npy") or f in ("cache_manifest.json", "final_dataset.tsv")], left


def test_published_coordinates_outside_the_chromosome_and_empty_files(tmp_path):
    lines = list(HEPG2_LINES)
    lines[2] = bed_line("chr2", 0, 10, ".", 6.0)
    root = tiny_root(tmp_path, hepg2_lines=lines)
    build_task("STARRSeq", root).prepare()  # the BED interval itself is fine
    raises(f"...{HEPG2_BED}: line 3: interval [0, 10) (read as [-1, 9) with coordinates='published') lies outside "
           "chromosome chr2 (length 30)", build_task("STARRSeq", root, coordinates="published").prepare)
    with open(os.path.join(root, "STARRSeq", K562_BED), "w"):
        pass
    raises(f"...{K562_BED}: no peaks (the file is empty)", build_task("STARRSeq", root).prepare)


def test_no_peak_on_the_split_chromosomes(tmp_path):
    only_m = [bed_line("chrM", 1, 10, ".", 2.0)]
    root = tiny_root(tmp_path, k562_lines=only_m, hepg2_lines=only_m)
    raises(f"...{os.sep}STARRSeq: no STARR-seq peak lies on the split chromosomes (chr1-22, X, Y)",
           build_task("STARRSeq", root).prepare)


def test_options_and_run_options():
    context = SimpleNamespace(data=DataOptions(starrseq_coordinates="published"))
    assert starrseq.STARRSeq.run_options(context) == {"coordinates": "published"}
    assert starrseq.STARRSeq.run_options(SimpleNamespace(data=DataOptions())) == {"coordinates": "bed"}
    with pytest.raises(InputError, match="coordinates must be bed or published, got 'ucsc'"):
        build_task("STARRSeq", "unused", coordinates="ucsc")
    with pytest.raises(InputError, match="option 'shift' does not apply"):
        build_task("STARRSeq", "unused", shift=1)
    urls = [raw.url for raw in build_task("STARRSeq", "unused").raw_files()]
    assert urls == ["https://www.encodeproject.org/files/ENCFF045TVA/@@download/ENCFF045TVA.bed.gz",
                    "https://www.encodeproject.org/files/ENCFF047LDJ/@@download/ENCFF047LDJ.bed.gz"]


def test_tiny_model_learns_fold_change(tmp_path_factory, single_thread):
    from promoter_modelling.lightning_module import MultiTaskDataModule, MultiTaskModule

    # short peaks, mostly on motif sites: a few epochs on two CPU cores
    root = fixture_root(tmp_path_factory, "starrseq_train", peaks_per_cell=2500, min_len=80, max_len=120,
                        site_fraction=0.6, gene_fraction=0.3)
    built = build_task("STARRSeq", root, LoaderSettings(batch_size=64))
    built.prepare()
    lightning.seed_everything(0)
    model = MultiTaskModule(heads=[built.head.to_dict()], model_name="MTLucifer", model_size="tiny", lr=3e-3)
    with torch.no_grad():  # start from the mean fold change (raw, about 2.5): the epochs go to the motifs
        model.heads["STARRSeq"].bias.copy_(torch.from_numpy(np.nanmean(np.asarray(built.train_dataset.y), axis=0)))
    lightning.Trainer(max_epochs=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0).fit(model, MultiTaskDataModule([built]))
    metrics = model.last_metrics["val"]
    assert math.isfinite(metrics["val_STARRSeq_avg_epoch_loss"])
    best = max(metrics["val_STARRSeq_K562_PearsonR"], metrics["val_STARRSeq_HepG2_PearsonR"])
    assert best > 0.3, metrics
