"""Batched inference in eval mode: the one path used by test evaluation, predict and analyses."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def predict_inputs(model, inputs: np.ndarray, batch_size: int = 256, device: torch.device | str | None = None,
                   heads: list[str] | None = None, progress: bool = False) -> dict[str, np.ndarray]:
    """Head outputs for an array of model inputs (uint8 codes (N, L) or (N, W, L), tokens, ...)."""
    device = torch.device(device) if device is not None else default_device()
    model = model.to(device).eval()
    heads = heads or list(model.heads)
    chunks: dict[str, list[np.ndarray]] = {h: [] for h in heads}
    starts: Iterable[int] = range(0, len(inputs), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="predicting", unit="batch")
    for start in starts:
        batch = torch.as_tensor(np.ascontiguousarray(inputs[start:start + batch_size])).to(device, non_blocking=True)
        out = model(batch, heads=heads)
        for head in heads:
            chunks[head].append(out[head].float().cpu().numpy())
    return {h: np.concatenate(v) if v else np.zeros((0, model.head_width(h)), np.float32)
            for h, v in chunks.items()}


@torch.inference_mode()
def predict_loader(model, loader, head: str, device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(targets, predictions) of one head over a data loader of {"x", "y"} batches."""
    device = torch.device(device) if device is not None else default_device()
    model = model.to(device).eval()
    ys, preds = [], []
    for batch in loader:
        out = model(batch["x"].to(device), heads=[head])[head]
        ys.append(batch["y"].float().numpy())
        preds.append(out.float().cpu().numpy())
    return np.concatenate(ys), np.concatenate(preds)
