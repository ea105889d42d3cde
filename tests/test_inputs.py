"""Model-specific inputs: DNABERT k-mer tokens, motif hit counts, and their caches."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import scipy.stats
import torch

from promoter_modelling.errors import InputError
from promoter_modelling.fixtures.motifs import consensus_pwm, meme_text
from promoter_modelling.recipe import InputRecipe, make_recipe
from promoter_modelling.sequence import reverse_complement
from promoter_modelling.tasks import inputs

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY_BERT = {"vocab_size": 4101, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 32, "max_position_embeddings": 300}


@pytest.fixture(scope="module")
def kmer_tokenizer_dir(tmp_path_factory) -> str:
    """A DNABERT-style folder: a 6-mer vocabulary (k-mers in shuffled order, so ids are not
    their base-4 rank), a BertTokenizer and a tiny BERT configuration, no weights."""
    from transformers import BertConfig, BertTokenizer

    folder = tmp_path_factory.mktemp("dnabert_tiny")
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=6)]
    np.random.default_rng(3).shuffle(kmers)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + kmers) + "\n")
    BertTokenizer(str(vocab), do_lower_case=False).save_pretrained(str(folder))
    BertConfig(**TINY_BERT).save_pretrained(str(folder))
    return str(folder)


def _random_sequences(n: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(row) for row in rng.choice(list("ACGT"), size=(n, length))]


# --- tokens ---------------------------------------------------------------------------------
def test_tokens_match_the_bert_tokenizer(kmer_tokenizer_dir, tmp_path):
    from transformers import BertTokenizer

    sequences = _random_sequences(3, 250, seed=0)
    sequences[1] = sequences[1][:100] + "N" + sequences[1][101:]
    tokens = make_recipe("tokens", dnabert_path=kmer_tokenizer_dir).model_inputs(sequences, str(tmp_path))
    tokenizer = BertTokenizer.from_pretrained(kmer_tokenizer_dir)
    assert tokens.shape == (3, 247) and tokens.dtype == np.int64
    assert (tokens[:, 0] == tokenizer.cls_token_id).all() and (tokens[:, -1] == tokenizer.sep_token_id).all()
    for seq, row in zip(sequences, tokens):
        expected = tokenizer(" ".join(seq[i:i + 6] for i in range(len(seq) - 5)), add_special_tokens=True)["input_ids"]
        assert row.tolist() == expected
    assert (tokens[1] == tokenizer.unk_token_id).sum() == 6  # the six k-mers covering the N


def test_tokens_are_cached_by_content(kmer_tokenizer_dir, tmp_path, monkeypatch):
    sequences = _random_sequences(4, 40, seed=1)
    recipe = make_recipe("tokens", dnabert_path=kmer_tokenizer_dir)
    first = recipe.model_inputs(sequences, str(tmp_path))
    cached = [f for f in os.listdir(tmp_path) if f.startswith("dnabert_tokens_")]
    assert len(cached) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed despite a valid cache")

    monkeypatch.setattr(inputs, "kmer_tokens", fail)
    np.testing.assert_array_equal(recipe.model_inputs(sequences, str(tmp_path)), first)
    monkeypatch.undo()
    recipe.model_inputs(sequences[:3], str(tmp_path))  # other sequences: a new entry
    assert len([f for f in os.listdir(tmp_path) if f.startswith("dnabert_tokens_")]) == 2


def test_dnabert_tokens_feed_the_tiny_model(kmer_tokenizer_dir, tmp_path):
    from promoter_modelling.backbones.registry import build_backbone

    recipe = make_recipe("tokens", dnabert_path=kmer_tokenizer_dir)
    tokens = recipe.model_inputs(_random_sequences(2, 250, seed=2), str(tmp_path))
    assert recipe.backbone_arguments() == {"dnabert_path": kmer_tokenizer_dir}
    model = build_backbone("DNABERT", "tiny", dnabert_path=kmer_tokenizer_dir)
    assert model(torch.from_numpy(tokens)).shape == (2, model.embed_dims)
    # DNABERTRandomInit reads only the configuration from the folder: no weights needed
    random_init = build_backbone("DNABERTRandomInit", "full", dnabert_path=kmer_tokenizer_dir)
    assert random_init.embed_dims == TINY_BERT["hidden_size"]
    assert random_init(torch.from_numpy(tokens)).shape == (2, TINY_BERT["hidden_size"])


def test_dnabert_loads_weights_from_a_local_folder(kmer_tokenizer_dir, tmp_path):
    import shutil

    from transformers import BertConfig, BertModel

    from promoter_modelling.backbones.dnabert import DNABERT

    folder = tmp_path / "with_weights"
    shutil.copytree(kmer_tokenizer_dir, folder)
    reference = BertModel(BertConfig(**TINY_BERT))
    reference.save_pretrained(str(folder))
    model = DNABERT(dnabert_path=str(folder))
    torch.testing.assert_close(model.model.pooler.dense.weight, reference.pooler.dense.weight)


def test_missing_dnabert_weights_are_a_clear_error(kmer_tokenizer_dir, tmp_path):
    from promoter_modelling.backbones.dnabert import DNABERT

    missing = str(tmp_path / "no_such_folder")
    with pytest.raises(InputError, match="does not exist") as info:
        DNABERT(dnabert_path=missing)
    assert "\n" not in str(info.value) and "--dnabert_path" in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        make_recipe("tokens", dnabert_path=missing)
    # a folder with the configuration and tokenizer but no weight file
    with pytest.raises(InputError, match="cannot load DNABERT") as info:
        DNABERT(dnabert_path=kmer_tokenizer_dir)
    assert "\n" not in str(info.value)


# --- motif counts ---------------------------------------------------------------------------
# G/C-only sites on an A/T-only background, at least 4 mismatches from one another, from their
# reverse complements and from every shifted window: no window but a planted one reaches
# p < 1e-4, so the counts must equal the planted instances exactly.
SITES = {"M_one": "CCCGCCCCGGCG", "M_two": "GGCCGGCCCGCG", "M_three": "CCCGGGGGCCCG"}


def _planted_example(n: int = 60, length: int = 120, seed: int = 5) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    chars = rng.choice(list("AT"), size=(n, length))
    truth = np.zeros((n, len(SITES)), dtype=np.float32)
    for row in range(n):
        starts = rng.permutation(np.arange(0, length - 12, 15))[: rng.integers(0, 4)]
        for start in starts:
            j = int(rng.integers(len(SITES)))
            site = list(SITES.values())[j]
            if rng.random() < 0.5:
                site = reverse_complement(site)  # a hit on the minus strand
            chars[row, start:start + 12] = list(site)
            truth[row, j] += 1
    sequences = ["".join(row) for row in chars]
    sequences[0] = "N" * 5 + sequences[0][5:]
    return sequences, truth


@pytest.fixture
def planted_meme(tmp_path) -> str:
    path = tmp_path / "planted.meme"
    path.write_text(meme_text({name: consensus_pwm(site, purity=0.94) for name, site in SITES.items()}))
    return str(path)


def test_motif_counts_equal_planted_sites(planted_meme, tmp_path):
    sequences, truth = _planted_example()
    assert truth.sum() > 40
    counts = make_recipe("motif_counts", meme_file=planted_meme).model_inputs(sequences, str(tmp_path))
    assert counts.dtype == np.float32 and counts.shape == (len(sequences), len(SITES))
    np.testing.assert_array_equal(counts, truth)
    assert make_recipe("motif_counts", meme_file=planted_meme).backbone_arguments() == {"num_motifs": len(SITES)}
    forward_only = make_recipe("motif_counts", meme_file=planted_meme,
                               motif_params={"both_strands": False}).model_inputs(sequences, str(tmp_path))
    assert forward_only.sum() < counts.sum()  # minus-strand sites are missed, and cached separately


def test_motif_count_cache_follows_the_meme_file(planted_meme, tmp_path):
    sequences, truth = _planted_example(n=20)
    cache = tmp_path / "cache"
    first = make_recipe("motif_counts", meme_file=planted_meme).model_inputs(sequences, str(cache))
    np.testing.assert_array_equal(first, truth)
    with open(planted_meme, "w") as handle:  # same path, two motifs only
        handle.write(meme_text({name: consensus_pwm(site, purity=0.94) for name, site in list(SITES.items())[:2]}))
    second = make_recipe("motif_counts", meme_file=planted_meme).model_inputs(sequences, str(cache))
    np.testing.assert_array_equal(second, truth[:, :2])
    assert len(os.listdir(cache)) == 2


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(0).uniform(0, 0.05, size=200) ** 2
    np.testing.assert_allclose(inputs.bh_qvalues(p), scipy.stats.false_discovery_control(p))
    # given only the smallest p-values of 5000 tests, the q-values are those of the full set
    padded = np.concatenate([p, np.ones(4800)])
    np.testing.assert_allclose(inputs.bh_qvalues(p, num_tests=5000), scipy.stats.false_discovery_control(padded)[:200])


def test_weak_hits_are_filtered_by_q_value(tmp_path):
    """Hits at p < 1e-4 that do not survive q <= 0.1 over every window scanned are not counted."""
    site = SITES["M_one"]
    weak = site[:3] + ("A" if site[3] != "A" else "T") + site[4:8] + ("A" if site[8] != "A" else "T") + site[9:]
    rng = np.random.default_rng(1)
    sequences = ["".join(rng.choice(list("AT"), size=200)) for _ in range(300)]
    sequences[0] = sequences[0][:50] + weak + sequences[0][62:]
    meme = tmp_path / "one.meme"
    meme.write_text(meme_text({"M_one": consensus_pwm(site, purity=0.94)}))
    motifs = inputs.read_motifs(str(meme))
    lenient = inputs.count_motif_hits(sequences, motifs, q_threshold=1.0)
    strict = inputs.count_motif_hits(sequences, motifs)
    assert lenient[0, 0] == 1 and lenient.sum() == 1
    assert strict.sum() == 0


def test_motif_counts_through_the_fluorescence_task(fluorescence_data_dir):
    from promoter_modelling.tasks.registry import build_task

    meme = os.path.join(fluorescence_data_dir, "demo_motifs.meme")
    recipe = make_recipe("motif_counts", meme_file=meme)
    task = build_task("FluorescenceData", fluorescence_data_dir, input_recipe=recipe)
    task.prepare()
    num_motifs = recipe.backbone_arguments()["num_motifs"]
    assert num_motifs == len(inputs.read_motifs(meme).names) == 8
    x = np.asarray(task.train_dataset.x)
    assert x.shape == (len(task.train_dataset), num_motifs) and x.dtype == np.float32
    train = task.split_table("train")
    consensus = "TGTGGTTTA"  # RUNX_like, planted as exact copies
    exact = np.array([s.count(consensus) + reverse_complement(s).count(consensus) for s in train["sequence"]])
    assert (x[:, 0] >= exact).all() and x[:, 0].sum() > 0


def test_motif_input_errors(tmp_path):
    with pytest.raises(InputError, match="--motif_meme_file"):
        make_recipe("motif_counts")
    with pytest.raises(InputError, match="not found"):
        make_recipe("motif_counts", meme_file=str(tmp_path / "absent.meme"))
    duplicated = tmp_path / "dup.meme"
    duplicated.write_text(meme_text({"A": consensus_pwm("ACGTAC")}) + "\n" +
                          meme_text({"A": consensus_pwm("ACGTAC")}).split("\n\n", 4)[-1])
    with pytest.raises(InputError, match="more than once"):
        inputs.read_motifs(str(duplicated))
    with pytest.raises(InputError, match="not available"):
        make_recipe("kmers")


def test_recipe_round_trips_and_embeds_its_resources(planted_meme, kmer_tokenizer_dir, tmp_path):
    sequences, truth = _planted_example(n=10)
    motif_recipe = make_recipe("motif_counts", meme_file=planted_meme)
    restored = InputRecipe.from_dict(motif_recipe.to_dict())
    os.remove(planted_meme)  # the embedded text suffices once the recipe is built
    np.testing.assert_array_equal(restored.model_inputs(sequences), truth)
    token_recipe = make_recipe("tokens", dnabert_path=kmer_tokenizer_dir)
    seqs = _random_sequences(2, 60, seed=4)
    np.testing.assert_array_equal(InputRecipe.from_dict(token_recipe.to_dict()).model_inputs(seqs),
                                  token_recipe.model_inputs(seqs))
    with pytest.raises(InputError, match="unknown field"):
        InputRecipe.from_dict({**token_recipe.to_dict(), "surprise": 1})


def test_recipe_overrides_and_missing_resources(planted_meme, tmp_path, capsys):
    recipe = make_recipe("motif_counts", meme_file=planted_meme)
    other = tmp_path / "other.meme"
    other.write_text(meme_text({"X": consensus_pwm("ACGTAC")}))
    with pytest.raises(InputError, match=r"other.meme: 1 motifs, but the model was trained on the 3 motifs of"):
        recipe.with_overrides(meme_file=str(other))
    same_count = tmp_path / "same_count.meme"
    same_count.write_text(meme_text({name: consensus_pwm(site, purity=0.8) for name, site in SITES.items()}))
    assert recipe.with_overrides(meme_file=str(same_count)).meme_file == str(same_count)
    assert "differs from the motif file the model was trained with" in capsys.readouterr().out
    with pytest.raises(InputError, match="give it with --motif_meme_file"):
        InputRecipe("motif_counts").model_inputs(["ACGT"])
    with pytest.raises(InputError, match="give the tokenizer with --dnabert_path"):
        InputRecipe("tokens").model_inputs(["ACGTACGT"])
