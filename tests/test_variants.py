"""Variant effect scoring on the fixture genome, with the planted-motif oracle as the model:
VCF reading and its errors, promoter tables, ALT windows against hand-built haplotype slices on
both strands, predicted effects of breaking a planted motif, statuses and the command's flags."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd
import pytest
from conftest import raises, read_fasta_text

from promoter_modelling.cli.variants_args import variant_options, variants_parser
from promoter_modelling.fixtures.genome import MOTIF_NAMES, PROMOTER, SLOTS, ensure_genome
from promoter_modelling.fixtures.motifs import CELLS, PLANTED_MOTIFS, oracle_activity
from promoter_modelling.fixtures.rnaseq import ensembl_table
from promoter_modelling.genome import Genome
from promoter_modelling.interpret import variants as scoring
from promoter_modelling.interpret.variants import VariantOptions, score_variants
from promoter_modelling.interpret.vcf import read_vcf
from promoter_modelling.sequence import decode, encode

WINDOWS = ((-300, -50), (-100, 150), (100, 350))
HEADER = "##fileformat=VCFv4.2\n##source=test\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
QUIET = VariantOptions(progress=False)
_RC = str.maketrans("ACGTN", "TGCAN")


def revcomp(seq: str) -> str:
    return seq.translate(_RC)[::-1]


def oracle(codes: np.ndarray) -> np.ndarray:
    return oracle_activity(codes)[None]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = str(tmp_path_factory.mktemp("variants"))
    layout = ensure_genome(root, "hg38", chrom_length=20_000)
    fasta = os.path.join(root, "common", "hg38.fa")
    genes = layout.genes.reset_index(drop=True)
    promoters = pd.DataFrame({"gene": [f"G{i}" for i in range(len(genes))], "chrom": genes["chrom"],
                              "tss": genes["tss"], "strand": genes["strand"]})
    text = {c: s.upper() for c, s in read_fasta_text(fasta).items()}
    return {"genome": Genome(fasta), "fasta": fasta, "genes": genes, "promoters": promoters, "text": text,
            "root": root}


def write_vcf(path, records: list[str], header: str = HEADER) -> str:
    path.write_text(header + "".join(r + "\n" for r in records))
    return str(path)


def record(chrom: str, pos: int, ref: str, alt: str, vid: str = ".") -> str:
    return f"{chrom}\t{pos}\t{vid}\t{ref}\t{alt}\t50\tPASS\t."


def genomic_pos(tss: int, strand: int, offset: int) -> int:
    """1-based position of the base `offset` bases downstream of the TSS along the transcript."""
    return tss + offset if strand > 0 else tss - offset


def hand_windows(seq: str, tss: int, strand: int, edit: tuple[int, str, str] | None = None) -> list[str]:
    """Windows cut from the (ALT) haplotype by slicing: the TSS keeps its place in every window."""
    tss0 = tss - 1
    if edit is not None:
        pos, ref, alt = edit
        assert seq[pos - 1:pos - 1 + len(ref)] == ref
        seq = seq[:pos - 1] + alt + seq[pos - 1 + len(ref):]
        if pos < tss:
            tss0 += len(alt) - len(ref)
    if strand > 0:
        return [seq[tss0 + w0:tss0 + w1] for w0, w1 in WINDOWS]
    return [revcomp(seq[tss0 - w1:tss0 - w0]) for w0, w1 in WINDOWS]


def motif_snv(world: dict, row: int, slot: int) -> tuple[str, tuple[int, str, str]]:
    """(chrom, (pos, ref, alt)) of an SNV changing the middle base of the motif planted in `slot`
    of fixture gene `row` (motifs are planted in transcript orientation, fixtures/genome.py)."""
    genes = world["genes"]
    chrom, tss, strand = genes.loc[row, "chrom"], int(genes.loc[row, "tss"]), int(genes.loc[row, "strand"])
    seq = world["text"][chrom]
    consensus = PLANTED_MOTIFS[MOTIF_NAMES[int(genes.loc[row, f"slot{slot}"])]][0]
    width = (PROMOTER[1] - PROMOTER[0]) // SLOTS
    r0 = PROMOTER[0] + slot * width + (width - len(consensus)) // 2
    start = tss + r0 - 1 if strand > 0 else tss - r0 - len(consensus) - 1  # 0-based, forward strand
    assert seq[start:start + len(consensus)] == (consensus if strand > 0 else revcomp(consensus))
    pos = start + len(consensus) // 2 + 1
    return chrom, (pos, seq[pos - 1], "C" if seq[pos - 1] != "C" else "A")


def first_gene(genes: pd.DataFrame, strand: int, motif: str | None = None) -> tuple[int, int]:
    """(row, slot) of the first gene on `strand` with `motif` planted in some slot."""
    code = MOTIF_NAMES.index(motif) if motif else None
    for row in np.flatnonzero(genes["strand"].to_numpy() == strand):
        slots = genes.loc[row, [f"slot{s}" for s in range(SLOTS)]].to_numpy()
        if code is None:
            return int(row), -1
        if (slots == code).any():
            return int(row), int(np.flatnonzero(slots == code)[0])
    raise AssertionError("no such gene in the fixture genome")


# --- VCF reading ---------------------------------------------------------------------------------

def test_read_vcf_splits_alleles_and_flags_symbolic_ones(tmp_path):
    path = write_vcf(tmp_path / "a.vcf", [record("chr1", 1500, "a", "g", "rs1"), "",
                                          record("chr1", 1600, "AT", "A,<DEL>,*,G]chr2:5],ACTT,.")])
    frame = read_vcf(path)
    assert frame.columns.tolist() == ["chrom", "pos", "id", "ref", "alt", "line", "supported"]
    assert frame["alt"].tolist() == ["G", "A", "<DEL>", "*", "G]chr2:5]", "ACTT", "."]
    assert frame["ref"].tolist() == ["A"] + ["AT"] * 6
    assert frame["line"].tolist() == [4] + [6] * 6
    assert frame["supported"].tolist() == [True, True, False, False, False, True, False]
    assert frame["pos"].dtype == np.int64 and frame["pos"].tolist() == [1500] + [1600] * 6
    assert frame["id"].tolist()[:2] == ["rs1", "."]


def test_gzip_vcf_reads_like_plain_text(tmp_path):
    records = [record("chr2", 1200 + i, "ACGT"[i % 4], "ACGT"[(i + 1) % 4]) for i in range(6)]
    plain = write_vcf(tmp_path / "p.vcf", records)
    packed = tmp_path / "p.bgz"  # the name does not say gzip: recognised by its first bytes
    packed.write_bytes(gzip.compress(open(plain, "rb").read()))
    pd.testing.assert_frame_equal(read_vcf(str(packed)), read_vcf(plain))


def test_vcf_errors_name_the_file_and_line(tmp_path):
    def vcf(records, header=HEADER):
        return write_vcf(tmp_path / "bad.vcf", records, header)

    path = vcf([record("chr1", 5, "A", "G"), "chr1\t6\t.\tA"])
    raises(f"{path}: line 5: expected at least 5 tab-separated columns (CHROM, POS, ID, REF, ALT), found 4",
           read_vcf, path)
    path = vcf(["chr1 5 . A G"])
    raises(f"{path}: line 4: expected at least 5 tab-separated columns (CHROM, POS, ID, REF, ALT), found 1",
           read_vcf, path)
    path = vcf([record("chr1", 5, "A", "G"), record("chr1", 0, "A", "G")])
    raises(f"{path}: line 5: POS '0' is not a positive integer", read_vcf, path)
    path = vcf([record("chr1", "12a", "A", "G")])  # type: ignore[arg-type]
    raises(f"{path}: line 4: POS '12a' is not a positive integer", read_vcf, path)
    path = vcf([record("chr1", 5, "AXG", "G")])
    raises(f"{path}: line 4: REF 'AXG' is not a DNA sequence (A, C, G, T, N)", read_vcf, path)
    path = vcf([record("chr1", 5, "A", "G,AZ")])
    raises(f"{path}: line 4: ALT allele 'AZ' is neither a DNA sequence (A, C, G, T, N) nor a symbolic allele "
           "(<...>, *, ., breakend)", read_vcf, path)
    path = vcf([record("chr1", 5, "A", "G,")])
    raises(f"{path}: line 4: ALT 'G,' has an empty allele", read_vcf, path)
    path = vcf([record("chr1", 5, "A", "AZ"), record("chr1", 0, "A", "G")])  # the first bad line is named
    raises(f"{path}: line 4: ALT allele 'AZ' is neither a DNA sequence (A, C, G, T, N) nor a symbolic allele "
           "(<...>, *, ., breakend)", read_vcf, path)
    path = vcf([record("chr1", 5, "A", "G")], header="##fileformat=VCFv4.2\n")
    raises(f"{path}: line 2: variant line before the #CHROM header line (is this a VCF file?)", read_vcf, path)
    path = vcf([], header="##fileformat=VCFv4.2\n")
    raises(f"{path}: no #CHROM header line (is this a VCF file?)", read_vcf, path)
    path = vcf([])
    raises(f"{path}: no variants (the file has only header lines)", read_vcf, path)
    binary = tmp_path / "binary.vcf"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")
    raises(f"{binary}: cannot be read as a text or gzip VCF file (...)", read_vcf, str(binary))
    raises(f"{tmp_path / 'missing.vcf'}: file not found", read_vcf, str(tmp_path / "missing.vcf"))


def test_variants_are_checked_against_the_reference(tmp_path, world):
    genome, fasta, seq = world["genome"], world["fasta"], world["text"]["chr1"]
    wrong = "C" if seq[1499] != "C" else "G"
    path = write_vcf(tmp_path / "ref.vcf", [record("chr1", 1400, seq[1399], "A"),
                                            record("chr1", 1500, wrong + seq[1500], "A")])
    message = (f"{path}: line 5: REF {wrong + seq[1500]!r} at chr1:1500 disagrees with the reference {fasta} "
               f"({seq[1499:1501]!r})")
    raises(message, scoring.check_variants, read_vcf(path), genome)
    raises(message, score_variants, read_vcf(path), world["promoters"], genome, oracle, CELLS, QUIET)
    path = write_vcf(tmp_path / "chrom.vcf", [record("1", 1500, seq[1499], "A")])
    raises(f"{path}: line 4: chromosome '1' is not in {fasta} (it has chr1, chr2, chr3, ...; did you mean 'chr1'?)",
           scoring.check_variants, read_vcf(path), genome)
    path = write_vcf(tmp_path / "chrom2.vcf", [record("scaffold_7", 1500, "A", "G")])
    raises(f"{path}: line 4: chromosome 'scaffold_7' is not in {fasta} (it has chr1, chr2, chr3, ...)",
           scoring.check_variants, read_vcf(path), genome)
    length = genome.chrom_lengths["chr1"]
    path = write_vcf(tmp_path / "end.vcf", [record("chr1", length + 1, "A", "G")])
    raises(f"{path}: line 4: position {length + 1} is beyond the end of chr1 ({length} bp in {fasta})",
           scoring.check_variants, read_vcf(path), genome)
    path = write_vcf(tmp_path / "end2.vcf", [record("chr1", length, "NN", "N")])
    raises(f"{path}: line 4: REF 'NN' at chr1:{length} runs past the end of chr1 ({length} bp in {fasta})",
           scoring.check_variants, read_vcf(path), genome)


# --- promoter tables -----------------------------------------------------------------------------

def test_read_promoters_from_a_tss_table_and_its_errors(tmp_path):
    path = tmp_path / "tss.csv"
    path.write_text("Gene,chrom,position,strand\nA,chr1,1500,+\nB,chr2,2600,-1\nC,chrX,300,-\n")
    frame = scoring.read_promoters(str(path))
    assert frame.to_dict("list") == {"gene": ["A", "B", "C"], "chrom": ["chr1", "chr2", "chrX"],
                                     "tss": [1500, 2600, 300], "strand": [1, -1, -1]}
    assert frame["tss"].dtype == np.int64
    path.write_text("gene\tchrom\tstrand\nA\tchr1\t+\n")
    raises(f"{path}: missing column(s) position (found: gene, chrom, strand); a TSS table has gene, chrom, "
           "position, strand (or give the Ensembl BioMart table)", scoring.read_promoters, str(path))
    path.write_text("gene\tchrom\tposition\tstrand\nA\tchr1\t10\t+\nB\tchr1\t20\tminus\n")
    raises(f"{path}: row 3: strand 'minus' is not +, -, 1 or -1", scoring.read_promoters, str(path))
    path.write_text("gene\tchrom\tposition\tstrand\nA\tchr1\t-10\t+\n")
    raises(f"{path}: row 2: position '-10' is not a positive integer", scoring.read_promoters, str(path))


def test_ensembl_table_scores_like_the_equivalent_tss_table(tmp_path, world):
    genes, seq = world["genes"], world["text"]
    ensembl = ensembl_table(genes)
    ensembl_path = tmp_path / "ensembl_data.txt"
    ensembl.to_csv(ensembl_path, sep="\t", index=False)
    n = len(genes)
    tss_path = tmp_path / "tss.tsv"
    pd.DataFrame({"gene": ensembl["Gene stable ID"][:n], "chrom": genes["chrom"], "position": genes["tss"],
                  "strand": np.where(genes["strand"] > 0, "+", "-")}).to_csv(tss_path, sep="\t", index=False)
    from_ensembl = scoring.read_promoters(str(ensembl_path))
    assert from_ensembl["chrom"].iloc[0] == genes["chrom"].iloc[0] and "chrY" in set(from_ensembl["chrom"])
    records = []
    for row in range(0, n, 5):
        chrom, tss = genes.loc[row, "chrom"], int(genes.loc[row, "tss"])
        slots = np.flatnonzero(genes.loc[row, [f"slot{s}" for s in range(SLOTS)]].to_numpy() >= 0)
        if slots.size:
            site_chrom, edit = motif_snv(world, row, int(slots[0]))
            records.append(record(site_chrom, *edit))
        records.append(record(chrom, tss + 5, seq[chrom][tss + 4:tss + 8], seq[chrom][tss + 4]))
    variants = read_vcf(write_vcf(tmp_path / "v.vcf", records))
    by_ensembl = score_variants(variants, from_ensembl, world["genome"], oracle, CELLS, QUIET)
    by_tss = score_variants(variants, scoring.read_promoters(str(tss_path)), world["genome"], oracle, CELLS, QUIET)
    assert (by_ensembl["status"] == "scored").sum() >= 3 * len(records)
    assert by_ensembl["delta"].abs().max() > 0.1
    pd.testing.assert_frame_equal(by_ensembl, by_tss)


# --- windows -------------------------------------------------------------------------------------

@pytest.mark.parametrize("strand", [1, -1])
def test_alt_windows_match_haplotype_slices(tmp_path, world, strand):
    genes, genome = world["genes"], world["genome"]
    row, _ = first_gene(genes, strand)
    chrom, tss = genes.loc[row, "chrom"], int(genes.loc[row, "tss"])
    seq = world["text"][chrom]
    edits = []
    for offset, kind in [(-120, "snv"), (130, "snv"), (-60, "del"), (120, "del"), (-200, "ins"), (20, "ins"),
                         (0, "ins"), (-15, "mnv")]:
        pos = genomic_pos(tss, strand, offset)
        base = seq[pos - 1]
        if kind == "snv":
            edits.append((pos, base, "A" if base != "A" else "C"))
        elif kind == "del":
            edits.append((pos, seq[pos - 1:pos + 6], base))  # 6 bases deleted
        elif kind == "ins":
            edits.append((pos, base, base + "GATTACA"))
        else:
            edits.append((pos, seq[pos - 1:pos + 1], seq[pos - 1:pos + 1].translate(_RC)))  # two-base MNV
    variants = read_vcf(write_vcf(tmp_path / "w.vcf", [record(chrom, *e) for e in edits]))
    promoters = world["promoters"]
    v, p = scoring.affected_promoters(variants, promoters)
    hits = {int(i) for i, j in zip(v, p) if j == row}
    assert hits == set(range(len(edits)))
    reference = scoring.reference_windows(genome, promoters.iloc[[row]], WINDOWS)[0]
    assert decode(reference) == hand_windows(seq, tss, strand)
    alt = scoring.alt_windows(genome, variants, promoters, np.arange(len(edits)), np.full(len(edits), row))
    assert alt.shape == (len(edits), 3, 250)
    for k, edit in enumerate(edits):
        expected = hand_windows(seq, tss, strand, edit)
        assert decode(alt[k]) == expected, (k, edit)
        assert expected != hand_windows(seq, tss, strand)


def test_indel_between_tss_and_a_separate_window_moves_it(tmp_path, world):
    """Windows not covering the TSS: a deletion between the TSS and a window shifts that window;
    a substitution there changes nothing and is outside the windows."""
    genes, genome = world["genes"], world["genome"]
    row, _ = first_gene(genes, 1)
    chrom, tss = genes.loc[row, "chrom"], int(genes.loc[row, "tss"])
    seq = world["text"][chrom]
    options = VariantOptions(windows=((100, 200),), progress=False)
    pos = tss + 30
    records = [record(chrom, pos, seq[pos - 1:pos + 3], seq[pos - 1]), record(chrom, pos, seq[pos - 1], "N")]
    variants = read_vcf(write_vcf(tmp_path / "gap.vcf", records))
    promoters = world["promoters"].iloc[[row]].reset_index(drop=True)
    v, p = scoring.affected_promoters(variants, promoters, options)
    assert v.tolist() == [0] and p.tolist() == [0]
    alt = scoring.alt_windows(genome, variants, promoters, v, p, options)
    shifted = seq[:pos] + seq[pos + 3:]
    assert decode(alt[0]) == [shifted[tss - 1 + 100:tss - 1 + 200]]
    table = score_variants(variants, promoters, genome, oracle, CELLS, options)
    assert table["status"].tolist() == ["scored"] * 3 + ["outside_promoter_windows"]


# --- scoring -------------------------------------------------------------------------------------

@pytest.mark.parametrize("strand", [1, -1])
def test_breaking_a_planted_runx_site_lowers_jurkat_by_the_oracle_effect(tmp_path, world, strand):
    genes, genome = world["genes"], world["genome"]
    row, slot = first_gene(genes, strand, "RUNX_like")
    tss = int(genes.loc[row, "tss"])
    chrom, edit = motif_snv(world, row, slot)
    seq = world["text"][chrom]
    width = (PROMOTER[1] - PROMOTER[0]) // SLOTS
    r0 = PROMOTER[0] + slot * width + (width - 9) // 2  # first base of the 9-bp site along the transcript
    variants = read_vcf(write_vcf(tmp_path / "runx.vcf", [record(chrom, *edit, vid="runx")]))
    counted = []

    def predict(codes):
        counted.append(len(codes))
        return oracle(codes)

    table = score_variants(variants, world["promoters"], genome, predict, CELLS, QUIET)
    mine = table[table["gene"] == f"G{row}"].set_index("cell")
    assert mine["status"].tolist() == ["scored"] * 3
    ref = oracle_activity(encode(hand_windows(seq, tss, strand))).mean(axis=0)
    alt = oracle_activity(encode(hand_windows(seq, tss, strand, edit))).mean(axis=0)
    np.testing.assert_allclose(mine.loc[list(CELLS), "ref_pred"], ref)
    np.testing.assert_allclose(mine.loc[list(CELLS), "alt_pred"], alt)
    np.testing.assert_allclose(mine.loc[list(CELLS), "delta"], alt - ref)
    assert mine.loc["JURKAT", "delta"] == pytest.approx(-1.2 / 3)  # one site in one of three windows
    assert mine.loc["THP1", "delta"] == pytest.approx(-0.1 / 3)
    assert mine.loc["K562", "delta"] == pytest.approx(0.0)
    assert (mine["delta_spread"] == 0).all()
    assert mine["strand"].iloc[0] == ("+" if strand > 0 else "-")
    # the site's middle base, 4 bases into the site; the published minus-strand windows sit one base
    # further upstream, so the same window base is one more base from the TSS there
    assert mine["tss_distance"].iloc[0] == (edit[0] - tss) * strand == r0 + 4 + (strand < 0)
    # three reference windows, then only the ALT windows the SNV changes (those holding its base)
    offset = int(mine["tss_distance"].iloc[0]) - (strand < 0)
    holding = sum(w0 <= offset < w1 for w0, w1 in WINDOWS)
    assert table[table["status"] == "scored"]["gene"].nunique() == 1 and holding == 1
    assert sum(counted) == 3 + holding


def test_statuses_ensemble_spread_and_batching(tmp_path, world):
    genes, genome, promoters = world["genes"], world["genome"], world["promoters"]
    row, _ = first_gene(genes, -1)
    chrom, tss = genes.loc[row, "chrom"], int(genes.loc[row, "tss"])
    seq = world["text"][chrom]
    far = 800  # the first 1-kb block of every chromosome holds no gene: outside every window
    records = [
        record(chrom, tss - 20, seq[tss - 21], "A" if seq[tss - 21] != "A" else "G", "snv"),
        record(chrom, far, seq[far - 1], "A" if seq[far - 1] != "A" else "G", "far"),
        record(chrom, tss + 10, seq[tss + 9], "<DEL>", "symbolic"),
        record(chrom, tss + 20, seq[tss + 19:tss + 31], seq[tss + 19], "long_del"),
        record(chrom, far + 5, seq[far + 4], "<INS>", "symbolic_far"),
    ]
    variants = read_vcf(write_vcf(tmp_path / "s.vcf", records))
    options = VariantOptions(max_indel=10, progress=False)
    table = score_variants(variants, promoters, genome, oracle, CELLS, options)
    by_id = {vid: frame for vid, frame in table.groupby("id", sort=False)}
    assert list(by_id) == ["snv", "far", "symbolic", "long_del", "symbolic_far"]  # VCF order
    assert by_id["snv"]["cell"].tolist() == list(CELLS) and (by_id["snv"]["gene"] == f"G{row}").all()
    for vid, status, gene in [("far", "outside_promoter_windows", ""), ("symbolic", "unsupported_allele", f"G{row}"),
                              ("long_del", "indel_too_long", f"G{row}"), ("symbolic_far", "unsupported_allele", "")]:
        frame = by_id[vid]
        assert frame["status"].tolist() == [status] and frame["gene"].tolist() == [gene], vid
        assert frame["cell"].tolist() == [""] and frame[["ref_pred", "alt_pred", "delta"]].isna().all(axis=None)
    assert by_id["symbolic"]["tss_distance"].tolist() == [-10]
    assert pd.isna(by_id["far"]["tss_distance"].iloc[0])
    # a scored 11-bp deletion with a larger max_indel; batches of one promoter give the same numbers
    wide = VariantOptions(max_indel=11, progress=False)
    again = score_variants(variants, promoters, genome, oracle, CELLS, wide)
    assert again[again["id"] == "long_del"]["status"].tolist() == ["scored"] * 3
    small = score_variants(variants, promoters, genome, oracle, CELLS, VariantOptions(max_indel=11, batch_size=1,
                                                                                      progress=False))
    pd.testing.assert_frame_equal(again, small)
    # two members: the second doubles every prediction
    pair = score_variants(variants, promoters, genome, lambda c: np.stack([oracle(c)[0], 2 * oracle(c)[0]]), CELLS,
                          wide)
    scored = (again["status"] == "scored").to_numpy()
    np.testing.assert_allclose(pair["delta"][scored], 1.5 * again["delta"][scored])
    np.testing.assert_allclose(pair["delta_spread"][scored], again["delta"][scored].abs() / np.sqrt(2))
    assert scoring.summary_line(variants, table) == ("5 variants read: 1 scored, 1 outside promoter windows, "
                                                     "2 with an unsupported allele, 1 indels too long")


def test_options_and_output(tmp_path, world):
    raises("windows -300,-50 0,100: give one or more windows START,END of one positive length "
           "(e.g. -300,-50 -100,150 100,350)", VariantOptions, windows=((-300, -50), (0, 100)))
    raises("max_indel must be 0 or more, got -1", VariantOptions, max_indel=-1)
    raises("batch size must be at least 1, got 0", VariantOptions, batch_size=0)
    seq = world["text"]["chr1"]
    variants = read_vcf(write_vcf(tmp_path / "o.vcf", [record("chr1", 700, seq[699], "N")]))
    table = score_variants(variants, world["promoters"], world["genome"], oracle, CELLS, QUIET)
    for name in ("out.tsv", "out.csv.gz", "out.parquet"):
        scoring.write_variant_table(table, str(tmp_path / name))
    back = pd.read_csv(tmp_path / "out.tsv", sep="\t", keep_default_na=False)
    assert back.columns.tolist() == list(scoring.OUTPUT_COLUMNS)
    assert back["status"].tolist() == ["outside_promoter_windows"]
    assert pd.read_parquet(tmp_path / "out.parquet")["status"].tolist() == ["outside_promoter_windows"]
    raises(f"{tmp_path / 'out.xlsx'}: unknown output format; name the file .csv, .tsv, .parquet, .csv.gz or .tsv.gz",
           scoring.write_variant_table, table, str(tmp_path / "out.xlsx"))


def test_parser_maps_every_flag():
    args = variants_parser().parse_args([
        "--checkpoint", "a.ckpt", "b.ckpt", "--run_dir", "runs/x", "--checkpoint", "c.ckpt", "--vcf", "v.vcf.gz",
        "--fasta", "hg38.fa", "--ensembl_table", "ensembl_data.txt", "--output", "out.parquet",
        "--windows", "-200,0", "-100,100", "--max_indel", "7", "--head", "LL100", "--batch_size", "64",
        "--device", "cpu", "--quiet"])
    assert args.checkpoint == ["a.ckpt", "b.ckpt", "c.ckpt"] and args.run_dir == ["runs/x"]
    assert (args.vcf, args.fasta, args.ensembl_table, args.tss_table, args.output) == (
        "v.vcf.gz", "hg38.fa", "ensembl_data.txt", None, "out.parquet")
    assert (args.head, args.device) == ("LL100", "cpu")
    assert variant_options(args) == VariantOptions(windows=((-200, 0), (-100, 100)), max_indel=7, batch_size=64,
                                                   progress=False)
    defaults = variants_parser().parse_args(["--vcf", "v", "--fasta", "f", "--tss_table", "t", "--output", "o.tsv"])
    assert variant_options(defaults) == VariantOptions()
    assert (defaults.head, defaults.device, defaults.checkpoint, defaults.run_dir) == (None, "auto", None, None)
    with pytest.raises(SystemExit):
        variants_parser().parse_args(["--vcf", "v", "--fasta", "f", "--tss_table", "t", "--ensembl_table", "e",
                                      "--output", "o.tsv"])
