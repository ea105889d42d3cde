"""The Enformer family: enformer-pytorch's trunk, attention-pooled over its 128-bp bins.

Inputs are float one-hot (B, L, 4) sequences. The trunk halves L seven times (rounding up), so a
200- or 250-bp sequence gives 2 bins and a 1177-bp one 10 (`num_bins`). `self.model` is the
enformer-pytorch `Enformer`, so parameter names are `model.<enformer key>` as published, including
its 283 `_trunk.*` aliases of the same tensors.

The pretrained weights (`enformer_path`, default the hub repository
"EleutherAI/enformer-official-rough") are read by `load_pretrained_enformer`, not by the
transformers `from_pretrained`/`save_pretrained` pair, which enformer-pytorch 0.8.12 pins to
transformers 4 (under transformers 5 `save_pretrained` fails on the `_trunk` aliases). As with the
published class method, `use_tf_gamma` keeps the checkpoint configuration's value (default False).
With `config` (EnformerConfig hyperparameters as a dict) the model is built with random weights and
nothing is read: the small and tiny sizes use this.

Needs `pip install --no-deps enformer-pytorch==0.8.12` (its metadata pins transformers 4.56.2;
the modelling code runs under transformers 5).
"""

from __future__ import annotations

import inspect
import json
import math
import os
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from promoter_modelling.backbones.base import Backbone
from promoter_modelling.backbones.dnabert import looks_like_local_path
from promoter_modelling.errors import InputError, first_line

if TYPE_CHECKING:
    from enformer_pytorch import Enformer as EnformerModel

DEFAULT_ENFORMER_PATH = "EleutherAI/enformer-official-rough"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # tried in this order
PRETRAINED_HEADS = {"human": 5313, "mouse": 1643}
RANDOM_INIT_HEADS = {"flu": 3}  # EnformerRandomInit's (unused) head, as published
_INSTALL_HINT = "the Enformer backbones need enformer-pytorch: pip install --no-deps enformer-pytorch==0.8.12"


def _enformer_classes():
    try:
        from enformer_pytorch import Enformer as EnformerModel
        from enformer_pytorch import EnformerConfig
    except ImportError as exc:
        raise InputError(_INSTALL_HINT) from exc
    return EnformerModel, EnformerConfig


def num_bins(length: int, num_downsamples: int = 7) -> int:
    """Bins the trunk leaves of `length` bp: halved `num_downsamples` times, rounding up."""
    for _ in range(num_downsamples):
        length = math.ceil(length / 2)
    return length


def build_enformer(config: dict, output_heads: dict | None = None) -> EnformerModel:
    """A randomly initialised enformer-pytorch model from EnformerConfig hyperparameters, with no
    target-length crop (`target_length=-1`) and `output_heads` replacing the config's heads."""
    model_cls, config_cls = _enformer_classes()
    kwargs = {**config, "target_length": -1}
    if output_heads is not None:
        kwargs["output_heads"] = dict(output_heads)
    try:
        hparams = config_cls(**kwargs)
        problem = _config_problem(hparams)
        if problem:
            raise ValueError(problem)
        return model_cls(hparams)
    except (TypeError, ValueError, AssertionError, ArithmeticError) as exc:
        raise InputError(f"invalid Enformer config {config!r}: {first_line(exc)}") from exc


def _config_problem(hparams) -> str | None:
    """Why enformer-pytorch would fail on these hyperparameters (some only at the first forward)."""
    dim, heads, divisible_by = hparams.dim, hparams.heads, hparams.dim_divisible_by
    if dim % heads or (dim // heads) % 6:
        return f"dim / heads must be a whole multiple of 6 (relative position features), got {dim} / {heads}"
    if divisible_by < 1 or dim % divisible_by or divisible_by > dim // 2:
        return f"dim must be a multiple of dim_divisible_by, which must be at most dim / 2 (got {divisible_by})"
    if hparams.num_downsamples < 3:
        return f"num_downsamples must be at least 3, got {hparams.num_downsamples}"
    return None


def _load_error(path: str, reason: str) -> InputError:
    return InputError(f"cannot load Enformer weights from {path!r} ({reason}); download the hub repository "
                      f"{DEFAULT_ENFORMER_PATH} (config.json and pytorch_model.bin) into a folder and pass "
                      "--enformer_path <folder>")


def _config_fields() -> set[str]:
    _, config_cls = _enformer_classes()
    params = inspect.signature(config_cls.__init__).parameters.values()
    return {p.name for p in params if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD}


def _read_state_dict(folder: str) -> dict[str, torch.Tensor]:
    for name in WEIGHT_FILES:
        file = os.path.join(folder, name)
        if os.path.isfile(file):
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(file, device="cpu")
            return torch.load(file, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"no {' or '.join(WEIGHT_FILES)} in the folder")


def _load_folder(folder: str, path: str) -> EnformerModel:
    """Build the model from folder/config.json and load its weights strictly."""
    try:
        with open(os.path.join(folder, "config.json")) as handle:
            raw = json.load(handle)
        if not isinstance(raw, dict):
            raise ValueError("config.json is not a JSON object")
        fields = _config_fields()  # drops HF bookkeeping (architectures, model_type, dtype, ...)
        config = {key: value for key, value in raw.items() if key in fields}
        with torch.device("meta"):  # no random init: every tensor comes from the checkpoint
            model = build_enformer(config)
        state = _read_state_dict(folder)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError("the weights file does not hold a state dict of tensors")
    except InputError as exc:
        raise _load_error(path, str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - unreadable JSON or weights (pickle, safetensors, OS errors)
        raise _load_error(path, first_line(exc)) from exc
    _load_strict(model, state, path)
    return model


def _load_strict(model: EnformerModel, state: dict[str, torch.Tensor], path: str) -> None:
    """Load every tensor of `state` into `model`, which it must match exactly. A checkpoint may hold
    the `_trunk.*` aliases or not: they are the same tensors as the primary keys."""
    if state and all(key.startswith("enformer.") for key in state):  # HF base-model prefix
        state = {key[len("enformer."):]: value for key, value in state.items()}
    expected = set(model.state_dict())
    aliases = {key for key in expected if key.startswith("_trunk.")}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing and set(missing) == aliases:
        missing = []  # only the aliases are absent: loading the primary keys fills them
    if missing or unexpected:
        parts = [f"{len(keys)} {kind} keys, e.g. {keys[0]!r}"
                 for kind, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise _load_error(path, "state dict does not match the config: " + "; ".join(parts))
    state = {key: value.float() if value.is_floating_point() else value for key, value in state.items()}
    try:
        model.load_state_dict(state, strict=not set(state).isdisjoint(aliases), assign=True)
    except RuntimeError as exc:  # shape mismatches
        detail = " ".join(str(exc).split())
        raise _load_error(path, detail[:300]) from exc
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise _load_error(path, "some tensors were not in the checkpoint")


def _hub_folder(repo_id: str) -> str:
    """The folder of a hub snapshot holding config.json and one weights file: the local cache when
    it has them, otherwise a download of only those files."""
    from huggingface_hub import HfApi, snapshot_download

    try:
        folder = snapshot_download(repo_id, local_files_only=True)
        if os.path.isfile(os.path.join(folder, "config.json")) and \
                any(os.path.isfile(os.path.join(folder, name)) for name in WEIGHT_FILES):
            return folder
    except Exception:  # noqa: BLE001 - not cached (or a broken cache): download below
        pass
    info = HfApi().model_info(repo_id)
    files = {sibling.rfilename for sibling in info.siblings or []}
    weights = next((name for name in WEIGHT_FILES if name in files), None)
    if "config.json" not in files or weights is None:
        raise FileNotFoundError(f"the repository has no config.json and {' or '.join(WEIGHT_FILES)}")
    return snapshot_download(repo_id, revision=info.sha, allow_patterns=["config.json", weights])


def load_pretrained_enformer(path: str) -> EnformerModel:
    """The pretrained enformer-pytorch model from a local folder (config.json + pytorch_model.bin or
    model.safetensors) or a hub id, with `target_length=-1` and strict weight loading. Any failure
    is a one-line InputError saying where to put the weights."""
    _enformer_classes()
    local = os.path.expanduser(path)
    if os.path.isdir(local):
        return _load_folder(local, path)
    if looks_like_local_path(path):
        raise InputError(f"Enformer folder {path!r} does not exist; download the hub repository "
                         f"{DEFAULT_ENFORMER_PATH} (config.json and pytorch_model.bin) into a folder and pass "
                         "--enformer_path <folder>")
    try:
        folder = _hub_folder(path)
    except Exception as exc:  # noqa: BLE001 - no network, unknown repository, missing files, ...
        raise _load_error(path, first_line(exc)) from exc
    return _load_folder(folder, path)


class Enformer(Backbone):
    """One-hot (B, L, 4) -> Enformer trunk embeddings (B, n, 2*dim) -> softmax attention pooling over
    the n bins (a Linear(2*dim, 1) logit per bin) -> (B, 2*dim). Pretrained weights; all trainable,
    the unused human and mouse heads included (as published).

    When the trunk needs no autograd graph (no gradients enabled, or a frozen trunk and an input
    that needs none) and runs in eval mode, a batch whose estimated peak activation memory
    (`inference_bytes_per_sequence`) exceeds the slice budget is run in slices of that budget, so
    memory stays bounded however large the batch; outputs do not depend on the slicing.
    """

    input_kind: ClassVar[str] = "onehot"
    optimizer_recipe: ClassVar[str] = "adamw"
    pooled: ClassVar[bool] = True  # attention pooling to (B, 2*dim); False: flattened head outputs
    frozen: ClassVar[bool] = False  # True: trunk parameters frozen and the trunk always in eval mode
    cpu_inference_slice_bytes = 2**30  # peak activation memory of one slice
    cuda_inference_slice_bytes = 8 * 2**30
    # The peak of a no-grad forward holds about 6-9 stem-sized tensors (L x dim/2 floats) per
    # sequence (measured at full size, 200 bp: benchmarks/bench_enformer_malinois.py).
    activation_copies = 8

    def __init__(self, enformer_path: str = DEFAULT_ENFORMER_PATH, config: dict | None = None,
                 pretrained: bool = True) -> None:
        super().__init__()
        self.enformer_path = enformer_path
        if not pretrained and config is None:  # weights come from a checkpoint next: the architecture only
            config = {}
        self.model = self.build_model(enformer_path, config)
        if self.pooled:
            self.embed_dims = 2 * self.model.dim
            self.attention_pool = nn.Linear(self.embed_dims, 1)
        else:
            self.embed_dims = None
        if self.frozen:
            self.model.requires_grad_(False)
            self.model.eval()

    def build_model(self, enformer_path: str, config: dict | None) -> EnformerModel:
        """The enformer-pytorch model: random with the pretrained heads when `config` is given."""
        if config is not None:
            return build_enformer(config, config.get("output_heads", PRETRAINED_HEADS))
        return load_pretrained_enformer(enformer_path)

    def train(self, mode: bool = True) -> Enformer:
        super().train(mode)
        if self.frozen:
            self.model.eval()  # no dropout and no BatchNorm statistics updates in a frozen trunk
        return self

    def slice_size(self, seq: torch.Tensor) -> int | None:
        """Sequences per slice when this batch should be run in slices, else None."""
        if self.model.training or torch.compiler.is_compiling():
            return None
        if torch.is_grad_enabled() and (seq.requires_grad or any(p.requires_grad for p in self.model.parameters())):
            return None
        budget = self.cuda_inference_slice_bytes if seq.device.type == "cuda" else self.cpu_inference_slice_bytes
        per_slice = max(1, budget // self.inference_bytes_per_sequence(seq.shape[1]))
        return per_slice if seq.shape[0] > per_slice else None

    def inference_bytes_per_sequence(self, length: int) -> int:
        """Estimated peak activation memory of one `length`-bp sequence in a no-grad fp32 forward."""
        return self.activation_copies * length * (self.model.dim // 2) * 4

    def trunk(self, seq: torch.Tensor, embeddings: bool = True) -> torch.Tensor | dict[str, torch.Tensor]:
        """Trunk embeddings (B, n, 2*dim), or the head outputs {name: (B, n, width)}, sliced when
        `slice_size` says so."""
        per_slice = self.slice_size(seq)
        if per_slice is None:
            return self.model(seq, return_only_embeddings=embeddings)
        parts = [self.model(part, return_only_embeddings=embeddings) for part in seq.split(per_slice)]
        if embeddings:
            return torch.cat(parts)
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        e = self.trunk(seq)
        w = torch.softmax(self.attention_pool(e).squeeze(-1), dim=1)
        return torch.einsum("bnd,bn->bd", e, w)


class EnformerFrozenBase(Enformer):
    """Enformer with a frozen pretrained trunk: only `attention_pool` (and the task head) train.
    Unlike the published class, the frozen trunk always runs in eval mode (no dropout, fixed
    BatchNorm statistics)."""

    frozen: ClassVar[bool] = True


class EnformerFullFrozenBase(Enformer):
    """A fixed feature extractor for the simple-regression strategies only (`embed_dims` None, no
    trainable parameters): the frozen pretrained model's human and mouse head outputs, concatenated
    per bin and flattened bin-major: (B, n * (5313 + 1643)) = 13,912 features at 200/250 bp and
    69,560 at 1177 bp. With `config`, the head widths come from the config."""

    pooled: ClassVar[bool] = False
    frozen: ClassVar[bool] = True
    features_only: ClassVar[bool] = True

    def feature_dims(self, length: int) -> int:
        """Width of the flattened features of `length`-bp sequences."""
        return num_bins(length, self.model.config.num_downsamples) * sum(self.model.output_heads.values())

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        out = self.trunk(seq, embeddings=False)
        names = [n for n in ("human", "mouse") if n in out] + [n for n in out if n not in ("human", "mouse")]
        return torch.cat([out[name] for name in names], dim=2).flatten(1)


class EnformerRandomInit(Enformer):
    """Enformer's architecture (dim 1536, depth 11, 8 heads) with random weights and an unused
    3-output `flu` head, as published; `enformer_path` is accepted and ignored (nothing is read).
    With `config`, that configuration with the `flu` head."""

    def build_model(self, enformer_path: str, config: dict | None) -> EnformerModel:
        hparams = config if config is not None else {"dim": 1536, "depth": 11, "heads": 8}
        return build_enformer(hparams, RANDOM_INIT_HEADS)
