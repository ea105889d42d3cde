"""Model-specific inputs derived from sequences (k-mer tokens for DNABERT, motif counts for
MotifBasedFCN), cached next to the task's other arrays.

- "tokens": overlapping 6-mers (stride 1) between [CLS] and [SEP], the ids the DNABERT tokenizer
  gives for the space-joined k-mers: int64 (N, L - 6 + 3), 247 tokens for 250 bp. The
  tokenizer is read once to map all 4**6 k-mers to ids; sequences are then mapped with numpy.
  Options: "dnabert_path" (local folder or hub id).
- "motif_counts": per sequence and motif, the number of FIMO hits (memelite) on both strands
  with p < 1e-4 and Benjamini-Hochberg q <= 0.1, the q-values being computed per motif over every
  window scanned in every sequence, as FIMO does. float32 (N, number of motifs in the MEME
  file). Options: "meme_file" (required), "p_threshold", "q_threshold", "both_strands",
  "motif_pseudocount".

Which kind a model reads, and the tokenizer or motif file, come from its input recipe
(`promoter_modelling.recipe`); arrays are cached with `cached_array` under a fingerprint of the
sequences, the tokenizer vocabulary or MEME file contents, and the parameters.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from promoter_modelling import sequence as seqlib
from promoter_modelling.errors import InputError
from promoter_modelling.io_utils import load_npy, save_npy, save_text

INPUT_KINDS = ("onehot", "tokens", "motif_counts")
KMER_SIZE = 6
MOTIF_DEFAULTS = {"p_threshold": 1e-4, "q_threshold": 0.1, "both_strands": True, "motif_pseudocount": 0.1}
MEME_DEFAULT_NSITES = 20.0  # what MEME assumes when a matrix does not state nsites
CACHE_FORMAT = 1


# --- cache ---------------------------------------------------------------------------------
def cached_array(cache_dir: str | None, prefix: str, sequences: list[str], params: dict,
                 build: Callable[[], np.ndarray]) -> np.ndarray:
    """`build()`, cached as `<cache_dir>/<prefix>_<fingerprint>.npy` (the fingerprint covers the
    sequences and `params`); not cached when cache_dir is None."""
    if cache_dir is None:
        return build()
    path = os.path.join(cache_dir, f"{prefix}_{_fingerprint(sequences, params)}.npy")
    if os.path.exists(path):
        return load_npy(path)
    array = build()
    save_npy(path, array)  # creates cache_dir
    return array


def _fingerprint(sequences: list[str], params: dict) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": CACHE_FORMAT, **params}, sort_keys=True, default=str).encode())
    digest.update(str(len(sequences)).encode())
    digest.update("\n".join(sequences).encode())
    return digest.hexdigest()[:24]


# --- DNABERT tokens -------------------------------------------------------------------------
@dataclass(frozen=True)
class KmerVocab:
    """Token id of every k-mer (index: base-4 number of the k-mer, A=0 C=1 G=2 T=3, first base
    most significant) and of the special tokens."""

    k: int
    ids: np.ndarray
    cls_id: int
    sep_id: int
    unk_id: int

    @property
    def digest(self) -> str:
        head = np.array([self.k, self.cls_id, self.sep_id, self.unk_id], dtype=np.int64)
        return hashlib.sha256(head.tobytes() + self.ids.astype(np.int64).tobytes()).hexdigest()


def all_kmers(k: int) -> list[str]:
    """Every k-mer over ACGT in base-4 order (AAAAAA, AAAAAC, ...)."""
    return ["".join(p) for p in itertools.product(seqlib.ALPHABET, repeat=k)]


def load_kmer_vocab(dnabert_path: str, k: int = KMER_SIZE) -> KmerVocab:
    """Read the tokenizer at `dnabert_path` and map all 4**k k-mers to ids in one tokenizer call,
    so its normalisation (e.g. lower-casing) applies exactly as to the published inputs."""
    from transformers import AutoTokenizer

    from promoter_modelling.backbones.dnabert import _load_error, check_dnabert_path

    check_dnabert_path(dnabert_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(os.path.expanduser(dnabert_path))
    except (OSError, ValueError) as exc:
        raise _load_error(dnabert_path, exc) from exc
    special = {"cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id, "unk": tokenizer.unk_token_id}
    missing = [name for name, value in special.items() if value is None]
    if missing:
        raise InputError(f"DNABERT tokenizer at {dnabert_path!r} has no {', '.join(missing)} token")
    kmers = all_kmers(k)
    ids = tokenizer(" ".join(kmers), add_special_tokens=False)["input_ids"]
    if len(ids) != len(kmers):
        raise InputError(f"DNABERT tokenizer at {dnabert_path!r} does not give one token per {k}-mer "
                         f"({len(ids)} tokens for {len(kmers)} k-mers)")
    return KmerVocab(k, np.asarray(ids, dtype=np.int64), int(special["cls"]), int(special["sep"]),
                     int(special["unk"]))


def kmer_tokens(sequences: list[str], vocab: KmerVocab) -> np.ndarray:
    """[CLS] + ids of the overlapping k-mers + [SEP] for equal-length sequences: int64 (N, L - k + 3).
    A k-mer containing N is [UNK]."""
    codes = seqlib.encode(sequences)
    if codes.shape[1] < vocab.k:
        raise InputError(f"sequences of {codes.shape[1]} bp are shorter than the {vocab.k}-mer tokens")
    windows = np.lib.stride_tricks.sliding_window_view(codes, vocab.k, axis=1)  # (N, L-k+1, k)
    place = 4 ** np.arange(vocab.k - 1, -1, -1, dtype=np.int64)
    index = (windows & 3).astype(np.int64) @ place
    tokens = vocab.ids[index]
    tokens[(windows >= seqlib.N_CODE).any(axis=-1)] = vocab.unk_id
    n = codes.shape[0]
    return np.concatenate([np.full((n, 1), vocab.cls_id, dtype=np.int64), tokens,
                           np.full((n, 1), vocab.sep_id, dtype=np.int64)], axis=1)


# --- motif counts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MotifSet:
    """Motifs of a MEME file in file order: names (first word of the MOTIF line), (4, w)
    probability matrices (A, C, G, T rows), nsites, and a digest of the file contents."""

    path: str
    names: list[str]
    pwms: list[np.ndarray]
    nsites: list[float]
    digest: str


def meme_file_path(options: dict) -> str:
    """The MEME file named by the input options, checked to exist."""
    path = options.get("meme_file")
    if not path:
        raise InputError("motif counts need a MEME motif file (--motif_meme_file)")
    if not os.path.isfile(path):
        raise InputError(f"{path}: MEME motif file not found")
    return path


def read_motifs(meme_file: str) -> MotifSet:
    """Read a MEME file with memelite; the number of motifs is the number of MOTIF entries."""
    from memelite.io import read_meme

    with open(meme_file, "rb") as handle:
        raw = handle.read()
    text = raw.decode("utf-8", errors="replace")
    headers = [" ".join(line[5:].split()) for line in text.splitlines() if line.startswith("MOTIF")]
    if not headers:
        raise InputError(f"{meme_file}: no MOTIF entries (is it a MEME-format motif file?)")
    seen: set[str] = set()
    for header in headers:
        if header in seen:
            raise InputError(f"{meme_file}: motif {header!r} appears more than once")
        seen.add(header)
    try:
        matrices = read_meme(meme_file)
    except (ValueError, AttributeError, IndexError) as exc:
        raise InputError(f"{meme_file}: cannot parse the motif matrices ({exc})") from exc
    if list(matrices) != headers:
        lost = [h for h in headers if h not in matrices]
        raise InputError(f"{meme_file}: motif {lost[0] if lost else headers[0]!r} has no readable "
                         "letter-probability matrix")
    nsites = [float(m.group(1)) if (m := re.search(r"nsites=\s*([0-9.eE+-]+)", block)) else MEME_DEFAULT_NSITES
              for block in re.split(r"^MOTIF", text, flags=re.M)[1:]]
    pwms = [np.asarray(matrices[h], dtype=np.float64) for h in headers]
    for header, pwm in zip(headers, pwms):
        if pwm.shape[0] != 4 or pwm.shape[1] == 0 or (pwm < 0).any():
            raise InputError(f"{meme_file}: motif {header!r} is not a 4-letter probability matrix")
    names = [h.split()[0] for h in headers]
    return MotifSet(meme_file, names, pwms, nsites, hashlib.sha256(raw).hexdigest())


def motif_parameters(options: dict) -> dict:
    """Scan parameters from options, with FIMO's defaults."""
    params = {key: options.get(key, default) for key, default in MOTIF_DEFAULTS.items()}
    params["p_threshold"] = float(params["p_threshold"])
    params["q_threshold"] = float(params["q_threshold"])
    params["both_strands"] = bool(params["both_strands"])
    params["motif_pseudocount"] = float(params["motif_pseudocount"])
    return params


def bh_qvalues(pvalues: np.ndarray, num_tests: int | None = None) -> np.ndarray:
    """Benjamini-Hochberg q-values of `pvalues`, the smallest of `num_tests` tests (default: all
    of them are given): q_(i) = min over j >= i of p_(j) * num_tests / j, capped at 1. With
    num_tests = len(pvalues) this equals scipy.stats.false_discovery_control(pvalues)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size if num_tests is None else int(num_tests)
    if p.size == 0:
        return p.copy()
    if m < p.size:
        raise ValueError(f"num_tests ({m}) is smaller than the number of p-values ({p.size})")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, p.size + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out


def _with_pseudocount(pwm: np.ndarray, nsites: float, pseudocount: float) -> np.ndarray:
    """FIMO's motif pseudocount: counts (freq * nsites) plus pseudocount * background (uniform), renormalised."""
    return (pwm * nsites + pseudocount * 0.25) / (nsites + pseudocount)


def count_motif_hits(sequences: list[str], motifs: MotifSet, p_threshold: float = 1e-4, q_threshold: float = 0.1,
                     both_strands: bool = True, motif_pseudocount: float = 0.1) -> np.ndarray:
    """float32 (N, number of motifs): per sequence, hits of each motif on the scanned strands with
    p < p_threshold and Benjamini-Hochberg q <= q_threshold (per motif, over every window scanned)."""
    from memelite import fimo

    codes = seqlib.encode(sequences)
    n, length = codes.shape
    counts = np.zeros((n, len(motifs.names)), dtype=np.float32)
    if n == 0:
        return counts
    # int8 one-hot (N, 4, L); N rows are all zero, which the scanner scores as background.
    onehot = np.ascontiguousarray(np.eye(5, 4, dtype=np.int8)[np.minimum(codes, seqlib.N_CODE)].transpose(0, 2, 1))
    pwms = {f"{i}": _with_pseudocount(pwm, nsites, motif_pseudocount)
            for i, (pwm, nsites) in enumerate(zip(motifs.pwms, motifs.nsites))}
    hits = fimo(pwms, onehot, threshold=p_threshold, reverse_complement=both_strands)
    strands = 2 if both_strands else 1
    for j, (table, pwm) in enumerate(zip(hits, motifs.pwms)):
        if table.empty:
            continue
        num_tests = n * max(0, length - pwm.shape[1] + 1) * strands
        keep = bh_qvalues(table["p-value"].to_numpy(), num_tests) <= q_threshold
        rows = table["sequence_name"].to_numpy().astype(np.int64)[keep]
        counts[:, j] = np.bincount(rows, minlength=n)
    return counts


def standard_kmer_tokenizer(directory: str, k: int = KMER_SIZE) -> str:
    """Write (once) a BERT tokenizer whose vocabulary is [PAD], [UNK], [CLS], [SEP], [MASK] and
    every k-mer, for randomly initialised DNABERT-style models; returns the folder."""
    if os.path.exists(os.path.join(directory, "vocab.txt")):
        return directory
    from transformers import BertTokenizer

    vocab = os.path.join(directory, "vocab.txt")
    save_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *all_kmers(k)]) + "\n", vocab)  # creates directory
    BertTokenizer(vocab, do_lower_case=False).save_pretrained(directory)
    return directory
