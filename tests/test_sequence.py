import numpy as np
import pytest
import torch

from promoter_modelling import sequence as seqlib
from promoter_modelling.errors import InputError


def manual_one_hot(seq: str) -> np.ndarray:
    out = np.zeros((len(seq), 4), dtype=np.float32)
    for i, base in enumerate(seq.upper()):
        if base == "N":
            out[i] = 0.25
        else:
            out[i, "ACGT".index(base)] = 1.0
    return out


def test_one_hot_matches_manual_encoding_including_n_and_lowercase():
    seqs = ["ACGTN", "acgtn", "TTGCA"]
    got = seqlib.one_hot(seqs)
    assert got.shape == (3, 5, 4) and got.dtype == np.float32
    for i, s in enumerate(seqs):
        np.testing.assert_array_equal(got[i], manual_one_hot(s))
    np.testing.assert_array_equal(seqlib.one_hot("ACGTN"), manual_one_hot("ACGTN"))


def test_invalid_character_names_sequence_position_and_character():
    with pytest.raises(InputError, match=r"sequence 2 has invalid character 'X' at position 3"):
        seqlib.encode(["AAAA", "CCCC", "GGGX"])
    with pytest.raises(InputError, match=r"invalid character '-'"):
        seqlib.encode(["AC-T"])


def test_unequal_lengths_are_rejected_with_index():
    with pytest.raises(InputError, match="sequence 1 has length 3, expected 4"):
        seqlib.encode(["ACGT", "ACG"])


def test_errors_name_file_rows_when_given():
    with pytest.raises(InputError, match=r"^t.tsv: row 9 has invalid character 'X' at position 1 "):
        seqlib.encode(["AAAA", "CXCC"], source="t.tsv", rows=[4, 9])
    with pytest.raises(InputError, match="^t.tsv: row 7 has length 3, expected 4 like row 2$"):
        seqlib.encode(["ACGT", "ACG"], source="t.tsv", rows=[2, 7])


def test_codes_to_one_hot_round_trip_and_padding_is_zero():
    codes = seqlib.encode(["ACGTN"])
    padded = np.concatenate([codes, np.full((1, 2), seqlib.PAD_CODE, np.uint8)], axis=1)
    onehot = seqlib.codes_to_one_hot(torch.from_numpy(padded))
    np.testing.assert_array_equal(onehot[0, :5].numpy(), manual_one_hot("ACGTN"))
    assert onehot[0, 5:].abs().sum() == 0
    assert seqlib.decode(codes) == ["ACGTN"]


def test_reverse_complement_strings_and_codes_agree():
    assert seqlib.reverse_complement("AACGTN") == "NACGTT"
    codes = seqlib.encode(["AACGTN"])
    assert seqlib.decode(seqlib.reverse_complement_codes(codes)) == ["NACGTT"]


def test_gc_content_and_kmers():
    codes = seqlib.encode(["GGCCAATT", "GGGGGGGG"])
    np.testing.assert_allclose(seqlib.gc_content(codes), [0.5, 1.0])
    assert seqlib.kmers("ACGTAC", 3) == ["ACG", "CGT", "GTA", "TAC"]
