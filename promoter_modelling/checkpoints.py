"""Load checkpoints written by this package, and pull backbone weights out of them."""

from __future__ import annotations

import os

import torch

from promoter_modelling.errors import InputError


def read_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict:
    """torch.load a checkpoint with a clear error for missing or corrupt files.

    Checkpoints hold plain Python objects next to tensors, so they are loaded with
    weights_only=False: load only checkpoints you trust.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise InputError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InputError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


def load_checkpoint_model(path: str, map_location: str | torch.device = "cpu"):
    """Rebuild a MultiTaskModule from its checkpoint, in eval mode."""
    from promoter_modelling.lightning_module import MultiTaskModule

    checkpoint = read_checkpoint(path, map_location)
    hparams = checkpoint.get("hyper_parameters")
    if not hparams or "heads" not in hparams:
        raise InputError(f"{path}: checkpoint has no model hyperparameters; if it was written by the published "
                         "code, convert it with promoter_modelling.checkpoints.import_published_checkpoint")
    model = MultiTaskModule(**hparams)
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"{path}: weights do not fit the {hparams.get('model_name')} model it describes ({first})") from exc
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
    state = backbone_state(path)
    try:
        model.backbone.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{path}: pretrained backbone does not fit {model.hparams.model_name} "
                         f"({str(exc).splitlines()[0]})") from exc
