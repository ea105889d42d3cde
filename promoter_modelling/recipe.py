"""The input recipe: how DNA sequences become a model's inputs, built once per run and saved in
every checkpoint, so `predict` and the analyses read sequences exactly as training did.

A recipe names the input kind ("onehot", "tokens", "motif_counts") and carries what that kind
needs, embedded so that a checkpoint alone suffices: the k-mer vocabulary of the DNABERT
tokenizer, or the text of the MEME motif file (with its digest and the scan parameters). It also
records the training sequence length of every head, the fluorescence split seed and the options
every task was built with. `model_inputs` is the one function that turns sequences into inputs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from promoter_modelling import sequence as seqlib
from promoter_modelling.errors import InputError
from promoter_modelling.tasks import inputs as inputlib

RECIPE_FORMAT = 1


@dataclass(frozen=True)
class InputRecipe:
    """How sequences become model inputs, and what the training data were built with.

    Parameters
    ----------
    kind : "onehot", "tokens" or "motif_counts".
    tokenizer : tokenizer source of token inputs (local folder or hub id), for messages.
    vocab : embedded k-mer vocabulary of token inputs ({"k", "ids", "cls", "sep", "unk"}).
    meme_file : path of the MEME file scanned for motif-count inputs, for messages.
    meme_text : embedded contents of that file.
    motif_params : FIMO scan parameters of motif-count inputs.
    sequence_lengths : training sequence length per head (one-hot models check inputs against it).
    split_seed : seed of the fluorescence split (None: the published seed 97).
    task_options : options each task was built with, by task name.
    """

    kind: str = "onehot"
    tokenizer: str | None = None
    vocab: Mapping[str, object] | None = None
    meme_file: str | None = None
    meme_text: str | None = None
    motif_params: Mapping[str, object] = field(default_factory=dict)
    sequence_lengths: Mapping[str, int] = field(default_factory=dict)
    split_seed: int | None = None
    task_options: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in inputlib.INPUT_KINDS:
            raise InputError(f"input kind {self.kind!r} is not available; expected one of "
                             f"{', '.join(inputlib.INPUT_KINDS)}")

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain-Python form stored in checkpoints."""
        return {"format": RECIPE_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: Mapping) -> InputRecipe:
        """Inverse of `to_dict` (unknown keys of newer versions are an error)."""
        values = {k: v for k, v in dict(raw).items() if k != "format"}
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(f"input recipe has unknown field(s) {', '.join(unknown)}; written by a newer version?")
        return cls(**values)

    # --- resources ------------------------------------------------------------------------------
    @functools.cached_property
    def kmer_vocab(self) -> inputlib.KmerVocab:
        """The embedded vocabulary of token inputs."""
        if self.kind != "tokens":
            raise InputError(f"{self.kind} inputs have no k-mer vocabulary")
        if not self.vocab:
            if self.tokenizer:  # checkpoints written before recipes were saved: read the tokenizer
                return inputlib.load_kmer_vocab(self.tokenizer)
            raise InputError("this model's input recipe has no DNABERT vocabulary (a checkpoint written before "
                             "recipes were saved): give the tokenizer with --dnabert_path")
        v = self.vocab
        return inputlib.KmerVocab(int(v["k"]), np.asarray(v["ids"], dtype=np.int64), int(v["cls"]), int(v["sep"]),
                                  int(v["unk"]))

    @functools.cached_property
    def motifs(self) -> inputlib.MotifSet:
        """The embedded motif set of motif-count inputs."""
        if self.kind != "motif_counts":
            raise InputError(f"{self.kind} inputs have no motif set")
        if not self.meme_text:
            raise InputError("this model's input recipe has no motif file (a checkpoint written before recipes "
                             "were saved): give it with --motif_meme_file")
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, os.path.basename(self.meme_file or "motifs.meme"))
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(self.meme_text)
            motifs = inputlib.read_motifs(path)
        return replace(motifs, path=self.meme_file or path)

    def identity(self) -> dict:
        """What makes two recipes give the same inputs (not where their files were): the kind, the
        vocabulary or the MEME text (as digests) and the scan parameters. Resources are not read."""
        out: dict = {"kind": self.kind}
        if self.kind == "tokens":
            out["vocab"] = (digest(json.dumps(dict(self.vocab), sort_keys=True)) if self.vocab
                            else f"tokenizer:{self.tokenizer}")
        if self.kind == "motif_counts":
            out["motifs"] = digest(self.meme_text) if self.meme_text else None
            out["motif_params"] = dict(self.motif_params)
        return out

    def backbone_arguments(self) -> dict:
        """Backbone constructor arguments the inputs imply: {"num_motifs": n} for motif counts,
        {"dnabert_path": tokenizer} (where the pretrained weights live) for tokens."""
        if self.kind == "motif_counts":
            return {"num_motifs": len(self.motifs.names)}
        if self.kind == "tokens" and self.tokenizer:
            return {"dnabert_path": self.tokenizer}
        return {}

    # --- the one conversion ---------------------------------------------------------------------
    def model_inputs(self, sequences: Sequence[str], cache_dir: str | None = None) -> np.ndarray:
        """Model inputs of equal-length `sequences`, in order.

        Parameters
        ----------
        sequences : DNA strings (A, C, G, T, N; either case).
        cache_dir : where token / motif-count arrays are cached by a fingerprint of the sequences
            and the recipe (None: not cached).

        Returns
        -------
        uint8 codes (N, L) for one-hot models (expanded on the device), int64 token ids
        (N, L - 3) for DNABERT, float32 motif hit counts (N, motifs) for motif models.
        """
        sequences = list(sequences)
        if self.kind == "onehot":
            return seqlib.encode(sequences)
        if self.kind == "tokens":
            vocab = self.kmer_vocab
            return inputlib.cached_array(cache_dir, "dnabert_tokens", sequences,
                                         {"kind": self.kind, "k": vocab.k, "vocab": vocab.digest},
                                         lambda: inputlib.kmer_tokens(sequences, vocab))
        motifs, params = self.motifs, inputlib.motif_parameters(dict(self.motif_params))
        return inputlib.cached_array(cache_dir, "motif_counts", sequences,
                                     {"kind": self.kind, "meme": motifs.digest, **params},
                                     lambda: inputlib.count_motif_hits(sequences, motifs, **params))

    def codes_to_inputs(self, codes: np.ndarray) -> np.ndarray:
        """Model inputs of uint8 codes (N, L): the codes themselves for one-hot models."""
        if self.kind == "onehot":
            return codes
        return self.model_inputs(seqlib.decode(codes))

    # --- overrides ------------------------------------------------------------------------------
    def with_overrides(self, *, meme_file: str | None = None, dnabert_path: str | None = None) -> InputRecipe:
        """This recipe with its motif file or tokenizer replaced (flags of predict and the analyses).

        A replacement with other contents than training used is refused when it changes the
        number of model inputs, and announced otherwise."""
        recipe = self
        if meme_file and self.kind == "motif_counts":
            text = read_text(meme_file)
            replacement = replace(self, meme_file=os.path.abspath(meme_file), meme_text=text)
            if self.meme_text and digest(text) != digest(self.meme_text):
                if len(replacement.motifs.names) != len(self.motifs.names):
                    raise InputError(f"{meme_file}: {len(replacement.motifs.names)} motifs, but the model was trained "
                                     f"on the {len(self.motifs.names)} motifs of {self.meme_file}")
                print(f"note: {meme_file} differs from the motif file the model was trained with ({self.meme_file})")
            recipe = replacement
        if dnabert_path and self.kind == "tokens":
            vocab = inputlib.load_kmer_vocab(dnabert_path)
            if self.vocab and vocab.digest != self.kmer_vocab.digest:
                print(f"note: the tokenizer at {dnabert_path} differs from the one the model was trained with "
                      f"({self.tokenizer})")
            recipe = replace(recipe, tokenizer=dnabert_path, vocab=vocab_record(vocab))
        return recipe


def read_text(path: str) -> str:
    """A text file's contents, or a one-line error naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as text ({exc})") from exc


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vocab_record(vocab: inputlib.KmerVocab) -> dict:
    """Embeddable form of a k-mer vocabulary."""
    return {"k": vocab.k, "ids": vocab.ids.astype(np.int64).tolist(), "cls": vocab.cls_id, "sep": vocab.sep_id,
            "unk": vocab.unk_id}


def make_recipe(kind: str, *, meme_file: str | None = None, dnabert_path: str | None = None,
                motif_params: Mapping[str, object] | None = None) -> InputRecipe:
    """A recipe with its resources read and embedded.

    Parameters
    ----------
    kind : the backbone's input kind.
    meme_file : MEME file scanned for motif-count inputs (required for them).
    dnabert_path : tokenizer folder or hub id for token inputs (required for them).
    motif_params : FIMO scan parameters (default: FIMO's).

    Returns
    -------
    InputRecipe
    """
    if kind == "onehot" or kind not in inputlib.INPUT_KINDS:
        return InputRecipe(kind)  # an unknown kind is refused by the recipe itself
    if kind == "tokens":
        if not dnabert_path:
            raise InputError("token inputs need a DNABERT tokenizer (--dnabert_path)")
        return InputRecipe(kind, tokenizer=dnabert_path, vocab=vocab_record(inputlib.load_kmer_vocab(dnabert_path)))
    path = inputlib.meme_file_path({"meme_file": meme_file})
    params = inputlib.motif_parameters(dict(motif_params or {}))
    recipe = InputRecipe(kind, meme_file=os.path.abspath(path), meme_text=read_text(path), motif_params=params)
    recipe.motifs  # noqa: B018 - parse now: a bad file fails before any work
    return recipe
