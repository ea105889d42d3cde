"""Checkpoints: load this package's, write them atomically, and import the published layout.

A checkpoint of this package holds the model's hyperparameters (head specs included), so one
file rebuilds the model. Checkpoints written by the published code have no hyperparameters
and name their modules differently; `import_published_checkpoint` maps them onto this
package's modules and writes a checkpoint of this package's format.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Sequence

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from promoter_modelling.download import atomic_path
from promoter_modelling.errors import InputError
from promoter_modelling.heads import HeadSpec
from promoter_modelling.lightning_module import MultiTaskModule
from promoter_modelling.recipe import InputRecipe


def _torch_load(path: str, map_location: str | torch.device = "cpu"):
    """torch.load with one-line errors for missing, truncated or foreign files.

    Checkpoints hold plain Python objects next to tensors, so they are loaded with
    weights_only=False: load only checkpoints you trust.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise InputError(f"{path}: not a readable PyTorch checkpoint, truncated or of another format "
                         f"({type(exc).__name__}: {exc})") from exc


def read_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict:
    """Load a Lightning checkpoint (see `_torch_load` for the errors and the trust caveat)."""
    checkpoint = _torch_load(path, map_location)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InputError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


def load_model(path: str, map_location: str | torch.device = "cpu") -> MultiTaskModule:
    """Rebuild a trained model from a checkpoint of this package.

    Parameters
    ----------
    path : a `.ckpt` written by training, `import-checkpoint` or `save_model_checkpoint`.
    map_location : device the weights are loaded onto.

    Returns
    -------
    MultiTaskModule in eval mode, with its heads, training sequence lengths and input recipe
    (`model.input_recipe`) restored, so sequences can be read exactly as in training.
    """
    checkpoint = read_checkpoint(path, map_location)
    hparams = checkpoint.get("hyper_parameters")
    if not hparams or "heads" not in hparams:
        raise InputError(f"{path}: checkpoint has no model hyperparameters; if it was written by the published "
                         "code, convert it with `promoter-modelling import-checkpoint` "
                         "(promoter_modelling.checkpoints.import_published_checkpoint)")
    try:
        model = MultiTaskModule(**hparams, architecture_only=True)
    except TypeError as exc:
        raise InputError(f"{path}: hyperparameters do not match this version of the model ({exc})") from exc
    problems = describe_mismatch(model.state_dict(), checkpoint["state_dict"])
    if problems:
        raise InputError(f"{path}: weights do not fit the {hparams.get('model_name')} model (size "
                         f"{hparams.get('model_size', 'full')}) its hyperparameters describe: {problems}")
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    model.on_load_checkpoint(checkpoint)  # the hook Lightning calls: restores sequence_lengths
    return model.to(map_location).eval()


def backbone_state(path: str) -> dict[str, torch.Tensor]:
    """Backbone weights of a checkpoint (keys without the `backbone.` prefix)."""
    state = read_checkpoint(path)["state_dict"]
    out = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    if not out:
        raise InputError(f"{path}: checkpoint has no backbone weights")
    return out


def load_backbone_weights(model, path: str) -> None:
    """Initialise `model.backbone` from a (pretraining) checkpoint; heads are not copied."""
    load_pretrained_backbone(model.backbone, path, model.hparams.model_name, model.hparams.model_size)


def load_pretrained_backbone(backbone, path: str, model_name: str, model_size: str) -> None:
    """Load a checkpoint's backbone weights into `backbone` (strict); weights that do not fit are a
    one-line error naming the keys and shapes."""
    state = backbone_state(path)
    problems = describe_mismatch(backbone.state_dict(), state)
    if problems:
        raise InputError(f"{path}: pretrained backbone does not fit {model_name} (size {model_size}): {problems}")
    backbone.load_state_dict(state, strict=True)


def describe_mismatch(expected: dict, given: dict, rename=None) -> str:
    """'' when `given` tensors fit `expected` key for key and shape for shape, else what does not
    (shape mismatches, keys the model lacks, keys the checkpoint lacks), shown by `rename(key)`."""
    rename = rename or (lambda key: key)
    shapes = [f"{rename(k)} {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in given.items()
              if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    unexpected = [rename(k) for k in given if k not in expected]
    missing = [rename(k) for k in expected if k not in given]
    problems = []
    if shapes:
        problems.append(f"shape mismatch (checkpoint vs model) {_shown(shapes, 3)}")
    if unexpected:
        problems.append(f"not in the model: {_shown(unexpected)}")
    if missing:
        problems.append(f"missing from the checkpoint: {_shown(missing)}")
    return "; ".join(problems)


# --- writing ---------------------------------------------------------------------------------

class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint writer that saves to a temporary file and renames it into place, so a
    run killed while saving never leaves a truncated `last.ckpt` to resume from."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if "://" in str(path):  # remote file systems: Lightning's own writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_path(str(path), suffix=".ckpt") as tmp, _write_errors(str(path)):
            super().save_checkpoint(checkpoint, tmp, storage_options)


@contextlib.contextmanager
def _write_errors(path: str):
    """torch.save reports a failed write (a full disk, a quota) as a RuntimeError of its archive
    writer; turn it into an OSError naming the checkpoint, as other writes report."""
    try:
        yield
    except RuntimeError as exc:
        if "write" not in str(exc).lower():
            raise
        # measured while the partial file still takes its space: a full disk has (almost) none left
        if shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free < 1024 * 1024:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path) from exc
        raise OSError(errno.EIO, str(exc).strip().splitlines()[0], path) from exc


def save_model_checkpoint(model, path: str, extra: dict | None = None) -> str:
    """Write `model` as a checkpoint of this package (state_dict + hyperparameters), atomically."""
    import lightning

    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": lightning.__version__, "epoch": 0, "global_step": 0}
    model.on_save_checkpoint(checkpoint)  # the hook Lightning calls: records sequence_lengths
    checkpoint.update(extra or {})
    with atomic_path(path, suffix=".ckpt") as tmp, _write_errors(path):
        torch.save(checkpoint, tmp)
    return path


# --- published checkpoints -------------------------------------------------------------------

# Sequence lengths the published models were trained on, per head (recorded in imported
# checkpoints so `predict` checks its inputs): 250-bp fluorescence promoters, 145-bp Sharpr
# sequences, 250-bp RNA-seq promoter windows.
PUBLISHED_SEQUENCE_LENGTHS = {"Fluorescence": 250, "Fluorescence_classification": 250, "Sharpr_MPRA": 145,
                              "LL100": 250, "CCLE": 250, "Roadmap": 250, "MalinoisMPRA": 200}
_BACKBONE, _DUPLICATE = "model.Backbone.", "backbone."


def _shown(items: Sequence[str], limit: int = 4) -> str:
    items = list(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def resolve_heads(heads: str | Sequence[str | dict | HeadSpec], data_dir: str | None = None) -> list[HeadSpec]:
    """Head specs from task names ("FluorescenceData", groups such as "RNASeq"), spec dicts or
    HeadSpecs. Tasks whose outputs come from their data (RNA-seq cells, ENCODE experiments)
    need `data_dir`."""
    from promoter_modelling.tasks.registry import build_task, expand_task_names

    items = [h.strip() for h in heads.split(",") if h.strip()] if isinstance(heads, str) else list(heads)
    if not items:
        raise InputError("no heads given: name the tasks the checkpoint was trained on (e.g. FluorescenceData)")
    specs: list[HeadSpec] = []
    for item in items:
        if isinstance(item, HeadSpec):
            specs.append(item)
        elif isinstance(item, dict):
            specs.append(HeadSpec.from_dict(item))
        else:
            for name in expand_task_names(item):
                task = build_task(name, data_dir or tempfile.gettempdir())
                if task.head is None:
                    if data_dir is None:
                        raise InputError(f"task {name}: its outputs are read from its data; give the data "
                                         "directory (data_dir / --data_dir) or a head spec")
                    task.prepare()
                specs.append(task.head)
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"tasks {', '.join(map(str, items))} give head {', '.join(repeated)} more than once")
    return specs


def _published_name(key: str) -> str:
    """Key of this package's model -> the key the published layout uses for it."""
    if key.startswith("backbone."):
        return _BACKBONE + key[len("backbone."):]
    if key.startswith("heads."):
        return "model." + key[len("heads."):]
    if key.startswith("loss_log_vars."):
        return f"model.{key[len('loss_log_vars.'):]}_loss"
    return key


def _published_state(path: str) -> dict[str, torch.Tensor]:
    """The state dict of a published checkpoint (a Lightning checkpoint or a bare state dict)."""
    raw = _torch_load(path)
    if isinstance(raw, dict) and (raw.get("hyper_parameters") or {}).get("heads"):
        raise InputError(f"{path}: already a checkpoint of this package; use it directly")
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise InputError(f"{path}: no state_dict of tensors in this file")
    return state


def _shape_arguments(model_name: str, specs: list[HeadSpec], kwargs: dict, sequence_length: int | None) -> dict:
    """Constructor arguments a published checkpoint's shapes depend on, when not given: the input
    length of a backbone built for one (PureCNN, MPRAnn) and the outputs of a one-task backbone
    (Malinois), from the heads."""
    from promoter_modelling.backbones.registry import backbone_parameters

    parameters = backbone_parameters(model_name)
    lengths = {PUBLISHED_SEQUENCE_LENGTHS.get(s.name.split("_subsampled_")[0]) for s in specs}
    length = sequence_length or (lengths.pop() if len(lengths) == 1 else None)  # heads agreeing on one length
    if "seq_len" in parameters and "seq_len" not in kwargs and length:
        kwargs["seq_len"] = int(length)
    if "n_outputs" in parameters and "n_outputs" not in kwargs and len(specs) == 1:
        kwargs["n_outputs"] = specs[0].num_logits
    return kwargs


def import_published_checkpoint(path: str, model_name: str, heads: str | Sequence[str | dict | HeadSpec],
                                model_size: str = "full", out: str | None = None, *,
                                backbone_kwargs: dict | None = None, data_dir: str | None = None,
                                allow_unused_heads: bool = False, sequence_length: int | None = None,
                                input_recipe: InputRecipe | None = None):
    """Build this package's model from a checkpoint in the published layout, in eval mode.

    Keys map as `model.Backbone.<k>` -> `backbone.<k>`, `model.<Head>.weight/bias` ->
    `heads.<Head>.*` and `model.<Head>_loss` -> `loss_log_vars.<Head>`; the duplicated
    `backbone.<k>` copies are ignored. `heads` are the training tasks (or head specs), in any
    order. Keys, head names or shapes that do not fit refuse the import with a message naming
    them; checkpoint heads that were not asked for are refused unless `allow_unused_heads`.
    With `out`, the model is also written there as a checkpoint of this package. `input_recipe`
    records how the model reads sequences (needed for token and motif-count models; one-hot
    models get the one-hot recipe).
    """
    state = _published_state(path)
    specs = resolve_heads(heads, data_dir)
    has_backbone = any(k.startswith(_BACKBONE) for k in state)
    backbone: dict[str, torch.Tensor] = {}
    head_params: dict[str, dict[str, torch.Tensor]] = {}
    losses: dict[str, torch.Tensor] = {}
    foreign: list[str] = []
    for key, value in state.items():
        if key.startswith(_BACKBONE):
            backbone[key[len(_BACKBONE):]] = value
        elif key.startswith(_DUPLICATE):
            if not has_backbone:  # only the duplicate was kept: use it
                backbone[key[len(_DUPLICATE):]] = value
        elif key.startswith("model.") and key.endswith("_loss") and "." not in key[len("model."):]:
            losses[key[len("model."):-len("_loss")]] = value
        elif key.startswith("model.") and key.count(".") == 2 and key.rsplit(".", 1)[1] in ("weight", "bias"):
            head, param = key[len("model."):].split(".")
            head_params.setdefault(head, {})[param] = value
        else:
            foreign.append(key)
    if foreign:
        raise InputError(f"{path}: {len(foreign)} key(s) are not in the published layout (model.Backbone.*, "
                         f"model.<head>.weight/bias, model.<head>_loss, backbone.*): {_shown(foreign)}")
    if not backbone:
        raise InputError(f"{path}: no backbone weights (model.Backbone.* keys) in the checkpoint")
    requested = [s.name for s in specs]
    missing_heads = [h for h in requested if h not in head_params]
    if missing_heads:
        raise InputError(f"{path}: no head {_shown(missing_heads)} in the checkpoint (its heads: "
                         f"{_shown(sorted(head_params), 12) or 'none'}); name the tasks it was trained on")
    unused = sorted(set(head_params) - set(requested))
    if unused and not allow_unused_heads:
        raise InputError(f"{path}: the checkpoint also has head(s) {_shown(unused, 12)}; add their tasks, or drop "
                         "them with allow_unused_heads=True (--allow_unused_heads)")
    backbone_kwargs = _shape_arguments(model_name, specs, dict(backbone_kwargs or {}), sequence_length)
    try:
        model = MultiTaskModule(heads=[s.to_dict() for s in specs], model_name=model_name, model_size=model_size,
                                backbone_kwargs=backbone_kwargs, architecture_only=True)
    except ValueError as exc:
        raise InputError(f"{path}: cannot build {model_name} ({model_size}): {exc}") from exc
    mapped: dict[str, torch.Tensor] = {f"backbone.{k}": v for k, v in backbone.items()}
    for head in requested:
        for param, item in head_params[head].items():
            mapped[f"heads.{head}.{param}"] = item
        if model.weighted:
            if head not in losses:
                raise InputError(f"{path}: no learned loss weight model.{head}_loss for head {head}; a multi-task "
                                 "checkpoint has one per task (was it trained on these tasks together?)")
            mapped[f"loss_log_vars.{head}"] = losses[head]
    target = model.state_dict()
    problems = describe_mismatch(target, mapped, _published_name)
    if problems:
        raise InputError(f"{path}: weights do not fit {model_name} (size {model_size}, heads "
                         f"{', '.join(requested)}): {problems}; is it a checkpoint of another model or size?")
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in mapped.items()}, strict=True)
    for head in requested:
        length = sequence_length or PUBLISHED_SEQUENCE_LENGTHS.get(head)
        if length:
            model.sequence_lengths[head] = int(length)
    if input_recipe is not None:
        model.set_input_recipe(input_recipe)
    model.eval()
    if out:
        save_model_checkpoint(model, out, {"imported_from": os.path.abspath(path)})
    return model


def is_package_checkpoint(path: str) -> bool:
    """Whether `path` is a checkpoint of this package (its tensors are memory-mapped, not read)."""
    if not os.path.exists(path):
        raise InputError(f"{path}: checkpoint not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # not a zip checkpoint (mmap needs one) or unreadable: the full reader says why
        raw = _torch_load(path)
    return isinstance(raw, dict) and bool((raw.get("hyper_parameters") or {}).get("heads"))


def ensure_package_checkpoint(path: str, model_name: str, tasks: str, model_size: str = "full", *,
                              backbone_kwargs: dict | None = None, data_dir: str | None = None,
                              input_recipe: InputRecipe | None = None) -> str:
    """`path` itself when it is a checkpoint of this package; for a checkpoint of the published code
    (a run extracted under saved_models/), the converted copy `imported/<name>` beside it, written
    once and kept while the original is unchanged. The original is never modified.

    Parameters
    ----------
    path : the run's best checkpoint.
    model_name, tasks, model_size : what the run trained (heads come from the tasks).
    backbone_kwargs, data_dir, input_recipe : as for `import_published_checkpoint`.

    Returns
    -------
    The path of a checkpoint `load_model` reads.
    """
    if is_package_checkpoint(path):
        return path
    out = os.path.join(os.path.dirname(path), "imported", os.path.basename(path))
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(path):
        return out
    print(f"{path}: a checkpoint of the published code; converting it once to {out} (the original is kept)")
    import_published_checkpoint(path, model_name, tasks, model_size, out, backbone_kwargs=backbone_kwargs,
                                data_dir=data_dir, allow_unused_heads=False, input_recipe=input_recipe)
    return out
