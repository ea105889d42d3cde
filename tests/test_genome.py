"""Genome access: window coordinates on both strands, batch extraction, GC counts, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import read_fasta_text

from promoter_modelling import genome as genome_mod
from promoter_modelling.errors import DownloadError, InputError
from promoter_modelling.fixtures.genome import MOTIF_NAMES, ensure_genome
from promoter_modelling.fixtures.motifs import PLANTED_MOTIFS
from promoter_modelling.genome import Genome, promoter_windows, tss_window_starts
from promoter_modelling.sequence import decode

_RC = str.maketrans("ACGTN", "TGCAN")


def revcomp(seq: str) -> str:
    return seq.translate(_RC)[::-1]


@pytest.fixture(scope="module")
def fixture_genome(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("genome"))
    layout = ensure_genome(root, "hg38", chrom_length=10_000)
    path = os.path.join(root, "common", "hg38.fa")
    return Genome(path, "hg38"), read_fasta_text(path), layout


@pytest.fixture()
def tiny_fasta(tmp_path) -> str:
    path = tmp_path / "tiny.fa"
    # chr1: 1-based positions 1..12 = A C G T T G C A A C g t (lowercase soft-masked tail)
    path.write_text(">chr1 test\nACGTTG\nCAACgt\n>chr2\nNNAC\n")
    return str(path)


def test_tss_window_coordinates_by_hand(tiny_fasta):
    g = Genome(tiny_fasta)
    # plus strand, TSS at 1-based 5 (T), window [-2, 3): 1-based 3..7 = G T T G C
    assert tss_window_starts(np.array([5]), np.array([1]), -2, 3).tolist() == [4 - 2]
    plus = promoter_windows(g, ["chr1"], np.array([5]), np.array([1]), [(-2, 3)])
    assert decode(plus[:, 0]) == ["GTTGC"]
    # minus strand, same TSS: 0-based [5 - 3 - 1, 5 + 2 - 1) = [1, 6) = C G T T G, reverse-complemented
    assert tss_window_starts(np.array([5]), np.array([-1]), -2, 3).tolist() == [1]
    minus = promoter_windows(g, ["chr1"], np.array([5]), np.array(["-"]), [(-2, 3)])
    assert decode(minus[:, 0]) == ["CAACG"]
    # soft-masked bases come back uppercase; outside the chromosome is N
    assert g.fetch("chr1", 8, 13) == "ACGTN"
    assert g.fetch("chr2", -2, 3) == "NNNNA"
    assert g.fetch("chr1", 0, 4, "-") == "ACGT"


def test_windows_match_fasta_text_on_both_strands(fixture_genome):
    g, text, layout = fixture_genome
    genes = layout.genes
    windows = [(-300, -50), (-100, 150), (100, 350)]
    codes = promoter_windows(g, genes["chrom"].to_numpy(), genes["tss"].to_numpy(), genes["strand"].to_numpy(), windows)
    assert codes.shape == (len(genes), 3, 250) and codes.dtype == np.uint8
    assert set(genes["strand"]) == {1, -1}
    for i, row in enumerate(genes.itertuples()):
        chrom = text[row.chrom].upper()
        for j, (w0, w1) in enumerate(windows):
            if row.strand > 0:
                expected = chrom[row.tss + w0 - 1:row.tss + w1 - 1]
            else:
                expected = revcomp(chrom[row.tss - w1 - 1:row.tss - w0 - 1])
            assert decode(codes[i, j:j + 1])[0] == expected


def test_promoter_motifs_read_forward_on_both_strands(fixture_genome):
    g, _, layout = fixture_genome
    genes = layout.genes
    region = decode(promoter_windows(g, genes["chrom"].to_numpy(), genes["tss"].to_numpy(),
                                     genes["strand"].to_numpy(), [(-300, 350)])[:, 0])
    for name in MOTIF_NAMES:
        found = np.array([s.count(PLANTED_MOTIFS[name][0]) for s in region])
        assert (found >= genes[name].to_numpy()).all()


def test_fetch_codes_and_ragged_match_text(fixture_genome):
    g, text, _ = fixture_genome
    rng = np.random.default_rng(1)
    chroms = rng.choice(["chr1", "chr7", "chrX"], size=40)
    starts = rng.integers(-20, 9_000, size=40)
    strands = rng.choice(["+", "-"], size=40)
    lengths = rng.integers(1, 300, size=40)

    def expected(c, s, n, strand):
        seq = text[c].upper()
        piece = "".join(seq[p] if 0 <= p < len(seq) else "N" for p in range(s, s + n))
        piece = "".join(b if b in "ACGT" else "N" for b in piece)
        return revcomp(piece) if strand == "-" else piece

    fixed = g.fetch_codes(chroms, starts, 50, strands)
    assert [decode(fixed[i:i + 1])[0] for i in range(40)] == [expected(*a, 50, d) for a, d in zip(zip(chroms, starts),
                                                                                                   strands)]
    got = {}
    for block, flat in g.iter_ragged(chroms, starts, lengths, strands):
        pieces = np.split(flat, np.cumsum(lengths[block])[:-1])
        got.update({int(b): decode(p[None])[0] for b, p in zip(block, pieces)})
    assert [got[i] for i in range(40)] == [expected(chroms[i], starts[i], lengths[i], strands[i]) for i in range(40)]


def test_gc_counts_match_direct_count(fixture_genome):
    g, text, _ = fixture_genome
    rng = np.random.default_rng(2)
    starts = rng.integers(0, 9_500, size=200)
    ends = starts + rng.integers(0, 400, size=200)
    seq = text["chr3"].upper()
    direct = [sum(b in "GC" for b in seq[s:e]) for s, e in zip(starts, ends)]
    assert g.gc_counts("chr3", starts, ends, block=37).tolist() == direct
    assert g.gc_counts("chr3", starts, ends).tolist() == direct


def test_missing_genome_is_a_one_line_error(tmp_path, monkeypatch):
    path = str(tmp_path / "common" / "hg38.fa")
    with pytest.raises(InputError) as err:
        Genome(path, "hg38")
    message = str(err.value)
    assert "\n" not in message and path in message and genome_mod.GENOME_URLS["hg38"] in message
    # the download path: a failed fetch says where to place the gunzipped file
    monkeypatch.setitem(genome_mod.GENOME_URLS, "hg38", (tmp_path / "nowhere" / "hg38.fa.gz").as_uri())
    with pytest.raises(DownloadError) as err:
        genome_mod.ensure_genome(str(tmp_path / "common"), "hg38")
    assert "\n" not in str(err.value) and "gunzipped" in str(err.value) and path in str(err.value)
    assert not os.path.exists(path)


def test_unknown_chromosome_is_reported(tiny_fasta):
    with pytest.raises(InputError, match="chromosome 'chr9'"):
        Genome(tiny_fasta).fetch_codes(["chr9"], np.array([0]), 3)
