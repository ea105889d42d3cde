"""Fast paths give the same answers as the reference computations, and caches stay compact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promoter_modelling import sequence as seqlib
from promoter_modelling.backbones.blocks import RotaryEmbedding, TransformerBlock, attention, dropout, rotate
from promoter_modelling.backbones.registry import build_backbone
from promoter_modelling.performance import maybe_compile, mtlucifer_flops, select_precision


def _inputs(n: int, length: int = 250, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 5, (n, length), generator=generator, dtype=torch.uint8)  # N included
    return seqlib.codes_to_one_hot(codes)


def _both_paths(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        model.set_naive_attention(False)
        fast = model(x)
        model.set_naive_attention(True)
        reference = model(x)
        model.set_naive_attention(False)
    return fast, reference


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_production_forward_equals_reference(size):
    torch.manual_seed(0)
    model = build_backbone("MTLucifer", size).eval()
    x = _inputs(6)
    fast, reference = _both_paths(model, x)
    assert fast.dtype == torch.float32
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(x).detach(), reference, rtol=1e-5, atol=1e-5)  # gradients on


def test_sliced_cpu_inference_equals_one_pass():
    torch.manual_seed(0)
    model = build_backbone("MTLucifer", "tiny").eval()
    x = _inputs(9)
    with torch.no_grad():
        whole = model.embed(x)
        model.cpu_inference_slice_bytes = 1  # one sequence per slice
        sliced = model(x)
    torch.testing.assert_close(sliced, whole, rtol=1e-5, atol=1e-5)


def test_production_gradients_equal_reference():
    torch.manual_seed(0)
    model = build_backbone("MTLucifer", "tiny").train()
    for module in model.modules():  # dropout off so both paths are deterministic
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    for block in model.promoter_transformer:
        block.dropout = 0.0
    x = _inputs(4)
    grads = []
    for naive in (False, True):
        model.set_naive_attention(naive)
        model.zero_grad()
        model(x).square().sum().backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6)


def test_fused_projection_follows_weight_updates():
    torch.manual_seed(0)
    block = TransformerBlock(32, 2, 64).eval()
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        before = block(x)
        block.xq.weight.mul_(2.0)  # in-place update must invalidate the cached [xq; xk; xv]
        block.xv.weight.add_(0.1)
        after = block(x)
        block.naive_attention = True
        reference = block(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference, rtol=1e-5, atol=1e-5)


def test_state_dict_layout_is_unchanged():
    block = TransformerBlock(64, 4, 256)
    assert list(block.state_dict()) == [
        "layer_norm1.weight", "layer_norm1.bias", "xk.weight", "xq.weight", "xv.weight", "rotary_emb.freqs",
        "fc1.weight", "layer_norm2.weight", "layer_norm2.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias",
    ]
    assert block.rotary_emb.freqs.shape == (8,)
    model = build_backbone("MTLucifer", "tiny")
    keys = list(model.state_dict())
    maybe_compile(model, True)  # compiled in place: names unchanged
    assert list(model.state_dict()) == keys


def test_cpu_dropout_and_explicit_attention():
    torch.manual_seed(0)
    x = torch.ones(200_000, requires_grad=True)
    y = dropout(x, 0.1)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.1) < 0.005
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.9))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.9)
    assert dropout(x, 0.1, training=False) is x
    q, k, v = (torch.randn(2, 3, 17, 8) for _ in range(3))
    # p > 0 takes the explicit CPU form; with p this small nothing is dropped
    torch.testing.assert_close(attention(q, k, v, 1e-12), torch.nn.functional.scaled_dot_product_attention(q, k, v),
                               rtol=1e-5, atol=1e-5)


def _numpy_rotary(x: np.ndarray, theta: float = 10000.0) -> np.ndarray:
    """Interleaved-pair rotary embedding written out with numpy, positions 0..T-1 on axis -2."""
    length, dim = x.shape[-2], x.shape[-1]
    freqs = 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    angles = np.arange(length, dtype=np.float64)[:, None] * freqs[None, :]  # (T, dim/2)
    even, odd = x[..., 0::2].astype(np.float64), x[..., 1::2].astype(np.float64)
    out = np.empty(x.shape, dtype=np.float64)
    out[..., 0::2] = even * np.cos(angles) - odd * np.sin(angles)
    out[..., 1::2] = odd * np.cos(angles) + even * np.sin(angles)
    return out


def test_rotary_matches_numpy_implementation():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 40, 16)
    cos, sin = RotaryEmbedding(16).cos_sin(40, x.device, x.dtype)
    np.testing.assert_allclose(rotate(x, cos, sin).numpy(), _numpy_rotary(x.numpy()), rtol=1e-5, atol=1e-5)
    # a fused (B, T, 2, H, d) q/k layout, with tables broadcast over the q/k and head axes
    qk = x.permute(0, 2, 1, 3).unsqueeze(2).expand(-1, -1, 2, -1, -1)
    out = rotate(qk, cos[:, None, None, :], sin[:, None, None, :])
    expected = _numpy_rotary(x.numpy()).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(out[:, :, 1].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_rotary_matches_rotary_embedding_torch():
    library = pytest.importorskip("rotary_embedding_torch")
    torch.manual_seed(0)
    reference = library.RotaryEmbedding(dim=16)
    ours = RotaryEmbedding(16)
    torch.testing.assert_close(ours.freqs, reference.freqs.detach())
    x = torch.randn(2, 4, 30, 16)  # (B, H, T, d), as the published block calls it
    cos, sin = ours.cos_sin(30, x.device, x.dtype)
    torch.testing.assert_close(rotate(x, cos, sin), reference.rotate_queries_or_keys(x, seq_dim=2),
                               rtol=1e-5, atol=1e-5)


def test_uint8_sequence_cache_is_a_sixteenth_of_float32_onehot(fluorescence_data_dir):
    from promoter_modelling.tasks.fluorescence import FluorescenceData

    data = FluorescenceData(fluorescence_data_dir)
    data.prepare()
    codes = data.full_dataset.x
    assert codes.dtype == np.uint8 and isinstance(codes, np.memmap)
    n, length = codes.shape
    assert codes.nbytes * 16 == n * length * 4 * np.dtype(np.float32).itemsize
    strings = data.merged["sequence"].tolist()[:20]
    torch.testing.assert_close(seqlib.codes_to_one_hot(np.asarray(codes[:20])), torch.from_numpy(seqlib.one_hot(strings)))


def test_precision_and_flops_helpers(capsys):
    if not torch.cuda.is_available():
        assert select_precision(True, "cpu") == "32-true"
        assert select_precision("bf16-mixed", "cpu") == "32-true"
        assert "32-true" in capsys.readouterr().err
    assert select_precision(False, "cuda") == select_precision("32", "cuda") == "32-true"
    model = build_backbone("MTLucifer", "full")
    tokens, d, mlp = 251, 1024, 4096
    cnn = 2 * 250 * 5 * (4 * 256 + 256 * 512 + 512 * 1024)
    assert mtlucifer_flops(model, 250) == cnn + 5 * (8 * tokens * d * d + 4 * tokens * d * mlp + 4 * tokens**2 * d)
