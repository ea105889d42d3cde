"""DNABERT: a BERT encoder over overlapping 6-mer tokens; the pooled [CLS] output is the embedding.

Inputs are int64 token ids (B, L - 5 + 2) built by tasks/inputs.py (kind "tokens") with the
tokenizer found at the same `dnabert_path`. `dnabert_path` is a local folder or a Hugging Face
hub id (default "zhihan1996/DNA_bert_6"). With `config` (a BertConfig as a dict) the encoder is
built from that configuration with random weights and nothing is read from `dnabert_path`:
the small and tiny sizes use this.
"""

from __future__ import annotations

import os
from typing import ClassVar

import torch
from torch import nn

from promoter_modelling.backbones.base import Backbone
from promoter_modelling.errors import InputError, first_line

DEFAULT_DNABERT_PATH = "zhihan1996/DNA_bert_6"
DNABERT_VOCAB_SIZE = 4101  # [PAD], [UNK], [CLS], [SEP], [MASK] and the 4096 6-mers


def looks_like_local_path(path: str) -> bool:
    """True for paths that cannot be hub ids (absolute, relative with ./ or ~, or existing)."""
    return os.path.isabs(path) or path.startswith((".", "~")) or os.path.exists(path) or path.count("/") > 1


def check_dnabert_path(path: str) -> None:
    """Fail early, without a network call, when a local DNABERT folder does not exist."""
    if looks_like_local_path(path) and not os.path.isdir(os.path.expanduser(path)):
        raise InputError(f"DNABERT folder {path!r} does not exist; pass --dnabert_path with a local folder "
                         f"holding the model and tokenizer files, or a hub id such as {DEFAULT_DNABERT_PATH!r}")


def _load_error(path: str, exc: Exception) -> InputError:
    return InputError(f"cannot load DNABERT from {path!r} ({first_line(exc)}); pass --dnabert_path with a local folder "
                      "holding config.json, the weights and vocab.txt, or a reachable hub id")


class DNABERT(Backbone):
    """Token ids (B, T) -> BertModel -> pooler_output (B, hidden_size). No attention mask: every
    sequence of a task has the same length, as in the published model."""

    input_kind: ClassVar[str] = "tokens"
    random_init = False

    def __init__(self, dnabert_path: str = DEFAULT_DNABERT_PATH, config: dict | None = None) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel, BertConfig, BertModel

        self.dnabert_path = dnabert_path
        if config is not None:
            self.model = BertModel(BertConfig(**config))
        else:
            check_dnabert_path(dnabert_path)
            path = os.path.expanduser(dnabert_path)
            try:
                if self.random_init:
                    self.model = AutoModel.from_config(AutoConfig.from_pretrained(path))
                else:
                    self.model = AutoModel.from_pretrained(path)
            except (OSError, ValueError) as exc:
                raise _load_error(dnabert_path, exc) from exc
        self.embed_dims = self.model.config.hidden_size
        # Checkpoints written with older transformers store the position-id buffer; it is derived
        # from the configuration, so it is dropped on load rather than reported as unexpected.
        self.register_load_state_dict_pre_hook(_drop_position_ids)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids.long()).pooler_output


class DNABERTRandomInit(DNABERT):
    """DNABERT's architecture with freshly initialised weights (only the configuration is read)."""

    random_init = True


def _drop_position_ids(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    embeddings = getattr(module.model, "embeddings", None)
    persistent = embeddings is not None and "position_ids" in embeddings._buffers \
        and "position_ids" not in embeddings._non_persistent_buffers_set
    if not persistent:
        state_dict.pop(f"{prefix}model.embeddings.position_ids", None)
