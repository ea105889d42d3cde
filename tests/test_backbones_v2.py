"""ResNet, MTLuciferWithResidualBlocks and MPRAnn: published layouts, counts, shapes and forward
computations (spec v2 §5.1-5.3).

The full-size models (114M / 74M parameters) are built once per module; forward passes use B=2.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from promoter_modelling.backbones.mprann import MPRAnn
from promoter_modelling.backbones.resnet import MTLuciferWithResidualBlocks, ResNet
from promoter_modelling.errors import InputError

pytestmark = pytest.mark.usefixtures("single_thread")  # see tests/conftest.py


# --- published key -> shape tables (full size, spec v2 §5) --------------------------------------
def _residual_block(prefix: str, c_in: int, c_out: int, k: int = 5) -> dict:
    keys = {f"{prefix}.conv1.weight": (c_out, c_in, k), f"{prefix}.gn1.weight": (c_out,), f"{prefix}.gn1.bias": (c_out,),
            f"{prefix}.conv2.weight": (c_out, c_out, k), f"{prefix}.gn2.weight": (c_out,), f"{prefix}.gn2.bias": (c_out,)}
    if c_in != c_out:
        keys[f"{prefix}.shortcut.weight"] = (c_out, c_in, 1)
    return keys


def _batch_norm(prefix: str, c: int) -> dict:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


RESNET_BLOCKS = [(512, 512), (512, 512), (512, 768), (768, 768), (768, 1024), (1024, 1024), (1024, 2048), (2048, 2048)]
RESNET_KEYS = {
    "initial_conv.weight": (512, 4, 5),
    **{k: v for i, (c_in, c_out) in enumerate(RESNET_BLOCKS)
       for k, v in _residual_block(f"resnet.{i}", c_in, c_out).items()},
    "linear.weight": (1024, 2048), "linear.bias": (1024,),
}
RESNET_BLOCK_PARAMS = [2_623_488, 2_623_488, 5_311_488, 5_901_312, 9_965_568, 10_489_856, 33_562_624, 41_951_232]


def _transformer_block(prefix: str, d: int = 1024, heads: int = 8, mlp: int = 4096) -> dict:
    return {f"{prefix}.layer_norm1.weight": (d,), f"{prefix}.layer_norm1.bias": (d,), f"{prefix}.xk.weight": (d, d),
            f"{prefix}.xq.weight": (d, d), f"{prefix}.xv.weight": (d, d), f"{prefix}.rotary_emb.freqs": (d // heads // 2,),
            f"{prefix}.fc1.weight": (d, d), f"{prefix}.layer_norm2.weight": (d,), f"{prefix}.layer_norm2.bias": (d,),
            f"{prefix}.fc2.weight": (mlp, d), f"{prefix}.fc2.bias": (mlp,), f"{prefix}.fc3.weight": (d, mlp),
            f"{prefix}.fc3.bias": (d,)}


MTL_RES_KEYS = {
    "cls_token_embedding": (1, 1, 1024),
    "promoter_cnn.0.cnn.weight": (256, 4, 20), "promoter_cnn.0.cnn.bias": (256,),
    "promoter_cnn.0.gn.weight": (256,), "promoter_cnn.0.gn.bias": (256,),
    **_residual_block("promoter_cnn.1", 256, 256), **_residual_block("promoter_cnn.2", 256, 512),
    **_residual_block("promoter_cnn.3", 512, 1024),
    **{k: v for b in range(5) for k, v in _transformer_block(f"promoter_transformer.{b}").items()},
}


def mprann_keys(fc1_in: int = 11_500) -> dict:
    return {"conv1.weight": (250, 4, 7), "conv1.bias": (250,), "conv2.weight": (250, 250, 8), "conv2.bias": (250,),
            "conv3.weight": (250, 250, 3), "conv3.bias": (250,), "conv4.weight": (100, 250, 2), "conv4.bias": (100,),
            **_batch_norm("bn1", 250), **_batch_norm("bn2", 250), **_batch_norm("bn3", 250), **_batch_norm("bn4", 100),
            "fc1.weight": (300, fc1_in), "fc1.bias": (300,), "fc2.weight": (200, 300), "fc2.bias": (200,)}


# Proposed `small` / `tiny` sizes (for the registry); their keys are the published ones.
PROPOSED_SIZES = {
    ResNet: {"small": {"initial_channels": 32, "block_channels": (32, 32, 48, 48, 64, 64, 96, 96), "embed_dims": 64},
             "tiny": {"initial_channels": 8, "block_channels": (8, 8, 16, 16, 24, 24, 32, 32), "embed_dims": 16}},
    MTLuciferWithResidualBlocks: {
        "small": {"nucleotide_embed_dims": 64, "nheads": 4, "cnn_channels": (16, 32), "num_transformer_blocks": 2},
        "tiny": {"nucleotide_embed_dims": 32, "nheads": 2, "cnn_channels": (8, 16), "num_transformer_blocks": 1}},
    MPRAnn: {"small": {"channels": (64, 64, 64, 32), "hidden_dims": 64, "embed_dims": 32},
             "tiny": {"channels": (8, 8, 8, 4), "hidden_dims": 16, "embed_dims": 8}},
}
FULL_KEYS = {ResNet: RESNET_KEYS, MTLuciferWithResidualBlocks: MTL_RES_KEYS, MPRAnn: mprann_keys()}


def fan_in_scaled_state_dict(table: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the table's shapes, scaled so signals neither vanish nor saturate."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in table.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("freqs"):
            out[key] = torch.rand(shape, generator=generator)
        elif len(shape) >= 2:
            fan_in = 1
            for dim in shape[1:]:
                fan_in *= dim
            out[key] = torch.randn(shape, generator=generator) / fan_in ** 0.5
        elif key.endswith("weight"):
            out[key] = 1 + 0.1 * torch.randn(shape, generator=generator)
        else:
            out[key] = 0.1 * torch.randn(shape, generator=generator)
    return out


def one_hot(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.one_hot(torch.randint(0, 4, (batch, length), generator=generator), 4).float()


def _numel(model: torch.nn.Module, prefix: str) -> int:
    """Elements of the state-dict entries under `prefix` (parameters and buffers)."""
    return sum(v.numel() for k, v in model.state_dict().items() if k == prefix or k.startswith(prefix + "."))


def _trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _output_lengths(model: torch.nn.Module, modules: list[torch.nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, list]:
    lengths: list[int] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: lengths.append(out.shape)) for m in modules]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return out, lengths


def _assert_strict_load(model: torch.nn.Module, table: dict) -> None:
    state = fan_in_scaled_state_dict(table)
    missing = dict(state)
    missing.pop(next(iter(table)))
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(missing, strict=True)
    model.load_state_dict(state, strict=True)
    loaded = model.state_dict()
    for key in table:
        assert torch.equal(loaded[key], state[key].to(loaded[key].dtype)), key


# --- ResNet (§5.1) -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet() -> ResNet:
    torch.manual_seed(0)
    return ResNet().eval()


def test_resnet_published_layout_and_counts(resnet):
    state = resnet.state_dict()
    assert len(state) == 54
    assert [k for k in RESNET_KEYS if "shortcut" in k] == [f"resnet.{i}.shortcut.weight" for i in (2, 4, 6)]
    assert {k: tuple(v.shape) for k, v in state.items()} == RESNET_KEYS
    assert len(list(resnet.buffers())) == 0
    assert sum(p.numel() for p in resnet.parameters()) == _trainable(resnet) == 114_537_472
    assert _numel(resnet, "initial_conv") == 10_240
    assert [_numel(resnet, f"resnet.{i}") for i in range(8)] == RESNET_BLOCK_PARAMS
    assert _numel(resnet, "linear") == 2_098_176
    assert resnet.initial_conv.padding == (1,) and resnet.initial_conv.bias is None
    assert [resnet.resnet[i].gn1.num_groups for i in range(8)] == [32, 32, 48, 48, 64, 64, 128, 128]
    assert resnet.embed_dims == 1024 and resnet.input_length is None and resnet.optimizer_recipe == "adamw"


@pytest.mark.parametrize("length,expected", [(250, [248, 248, 248, 124, 124, 62, 62, 31, 31]),
                                             (200, [198, 198, 198, 99, 99, 50, 50, 25, 25])])
def test_resnet_shapes(resnet, length, expected):
    modules = [resnet.initial_conv, *resnet.resnet]
    out, shapes = _output_lengths(resnet, modules, one_hot(2, length))
    assert [s[-1] for s in shapes] == expected
    assert [s[1] for s in shapes] == [512, 512, 512, 768, 768, 1024, 1024, 2048, 2048]
    assert out.shape == (2, 1024) and torch.isfinite(out).all()


def test_resnet_loads_published_state_dict_strict(resnet):
    _assert_strict_load(resnet, RESNET_KEYS)


def _residual_reference(x: torch.Tensor, state: dict, prefix: str, c_in: int, c_out: int, k: int = 5) -> torch.Tensor:
    """The published ResidualBlock, written with torch.nn.functional."""
    stride, groups = (2 if c_in != c_out else 1), max(1, c_out // 16)
    y = F.conv1d(x, state[f"{prefix}.conv1.weight"], stride=stride, padding=k // 2)
    y = F.relu(F.group_norm(y, groups, state[f"{prefix}.gn1.weight"], state[f"{prefix}.gn1.bias"]))
    y = F.conv1d(F.pad(y, ((k - 1) // 2, k - 1 - (k - 1) // 2)), state[f"{prefix}.conv2.weight"])
    shortcut = F.conv1d(x, state[f"{prefix}.shortcut.weight"], stride=2) if c_in != c_out else x
    return F.relu(F.group_norm(shortcut + y, groups, state[f"{prefix}.gn2.weight"], state[f"{prefix}.gn2.bias"]))


def test_resnet_strided_block_matches_functional_reference(resnet):
    block = resnet.resnet[2]  # 512 -> 768, stride 2, 1x1 shortcut
    x = torch.randn(1, 512, 31, generator=torch.Generator().manual_seed(3))
    state = {f"b.{k}": v for k, v in block.state_dict().items()}
    with torch.no_grad():
        torch.testing.assert_close(block(x), _residual_reference(x, state, "b", 512, 768), atol=1e-5, rtol=1e-5)


def test_tiny_resnet_matches_functional_reference():
    kwargs = PROPOSED_SIZES[ResNet]["tiny"]
    torch.manual_seed(0)
    model = ResNet(**kwargs).eval()
    state = model.state_dict()
    x = one_hot(2, 37)
    with torch.no_grad():
        h = F.conv1d(x.permute(0, 2, 1), state["initial_conv.weight"], padding=1)
        previous = kwargs["initial_channels"]
        for i, width in enumerate(kwargs["block_channels"]):
            h = _residual_reference(h, state, f"resnet.{i}", previous, width)
            previous = width
        expected = F.linear(h.mean(dim=-1), state["linear.weight"], state["linear.bias"])
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


# --- MTLuciferWithResidualBlocks (§5.2) ------------------------------------------------------------
@pytest.fixture(scope="module")
def mtl_res() -> MTLuciferWithResidualBlocks:
    torch.manual_seed(0)
    return MTLuciferWithResidualBlocks().eval()


def test_mtl_residual_published_layout_and_counts(mtl_res):
    state = mtl_res.state_dict()
    assert len(state) == 90
    assert {k: tuple(v.shape) for k, v in state.items()} == MTL_RES_KEYS
    assert list(state)[0] == "cls_token_embedding"
    assert sum(v.numel() for v in state.values()) == 74_131_520
    assert _trainable(mtl_res) == sum(p.numel() for p in mtl_res.parameters()) == 74_131_200
    # the 320 others: the five rotary frequency tables (a frozen parameter in the published model)
    frozen = {k: v.numel() for k, v in mtl_res.named_buffers()}
    assert frozen == {f"promoter_transformer.{b}.rotary_emb.freqs": 64 for b in range(5)}
    assert _numel(mtl_res, "cls_token_embedding") == 1_024
    assert [_numel(mtl_res, f"promoter_cnn.{i}") for i in range(4)] == [21_248, 656_384, 2_099_200, 8_392_704]
    assert [_numel(mtl_res, f"promoter_transformer.{b}") for b in range(5)] == [12_592_192] * 5
    assert mtl_res.embed_dims == 1024 and mtl_res.input_length is None and mtl_res.optimizer_recipe == "adamw"
    assert 0.015 < float(mtl_res.cls_token_embedding.std()) < 0.025  # ~ N(0, 0.02)


@pytest.mark.parametrize("length,cnn_lengths", [(250, [250, 250, 125, 63]), (200, [200, 200, 100, 50])])
def test_mtl_residual_shapes(mtl_res, length, cnn_lengths):
    tokens: list[tuple] = []
    handle = mtl_res.promoter_transformer[0].register_forward_pre_hook(lambda _m, args: tokens.append(args[0].shape))
    try:
        out, shapes = _output_lengths(mtl_res, list(mtl_res.promoter_cnn), one_hot(2, length))
    finally:
        handle.remove()
    assert [s[-1] for s in shapes] == cnn_lengths
    assert [s[1] for s in shapes] == [256, 256, 512, 1024]
    assert tokens == [(2, cnn_lengths[-1] + 1, 1024)]
    assert out.shape == (2, 1024) and torch.isfinite(out).all()


def test_mtl_residual_first_conv_pads_9_left_10_right(mtl_res):
    conv = mtl_res.promoter_cnn[0].cnn
    x = torch.randn(2, 4, 50, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(conv(x), F.conv1d(F.pad(x, (9, 10)), conv.weight, conv.bias), atol=1e-5, rtol=1e-5)


def test_mtl_residual_loads_published_state_dict_strict(mtl_res):
    _assert_strict_load(mtl_res, MTL_RES_KEYS)


def test_tiny_mtl_residual_paths_and_slicing_agree():
    torch.manual_seed(0)
    model = MTLuciferWithResidualBlocks(**PROPOSED_SIZES[MTLuciferWithResidualBlocks]["tiny"]).eval()
    x = one_hot(5, 250)
    with torch.no_grad():
        fast = model(x)
        model.cpu_inference_slice_bytes = 1  # one sequence per slice
        sliced = model(x)
        model.set_naive_attention(True)
        reference = model(x)
    torch.testing.assert_close(sliced, fast, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(reference, fast, atol=1e-5, rtol=1e-5)


# --- MPRAnn (§5.3) -------------------------------------------------------------------------------
@pytest.mark.parametrize("seq_len,fc1_in,total", [(250, 11_500, 4_257_550), (200, 9_000, 3_507_550)])
def test_mprann_published_layout_and_counts(seq_len, fc1_in, total):
    model = MPRAnn(seq_len=seq_len)
    state = model.state_dict()
    assert len(state) == 32
    assert {k: tuple(v.shape) for k, v in state.items()} == mprann_keys(fc1_in)
    assert sum(p.numel() for p in model.parameters()) == _trainable(model) == total
    assert [_numel(model, f"conv{i}") for i in range(1, 5)] == [7_250, 500_250, 187_750, 50_100]
    assert [sum(p.numel() for p in getattr(model, f"bn{i}").parameters()) for i in range(1, 5)] == [500, 500, 500, 200]
    assert _numel(model, "fc1") == fc1_in * 300 + 300 and _numel(model, "fc2") == 60_200
    assert model.embed_dims == 200 and model.input_length == seq_len and model.optimizer_recipe == "adam"
    model.eval()
    with torch.no_grad():
        out = model(one_hot(2, seq_len))
    assert out.shape == (2, 200) and ((out > 0) & (out < 1)).all()


def test_mprann_refuses_other_lengths():
    model = MPRAnn(seq_len=250)
    with pytest.raises(InputError) as caught:
        model(one_hot(2, 200))
    assert "\n" not in str(caught.value) and "250" in str(caught.value) and "200" in str(caught.value)


def test_mprann_loads_published_state_dict_strict():
    _assert_strict_load(MPRAnn(), mprann_keys())


def test_mprann_matches_functional_reference():
    model = MPRAnn().eval()
    state = fan_in_scaled_state_dict(mprann_keys(), seed=5)
    model.load_state_dict(state, strict=True)

    def bn(x, name):
        return F.batch_norm(x, state[f"{name}.running_mean"], state[f"{name}.running_var"], state[f"{name}.weight"],
                            state[f"{name}.bias"], training=False, eps=1e-5)

    def conv(x, name):
        return F.conv1d(x, state[f"{name}.weight"], state[f"{name}.bias"])

    x = one_hot(2, 250)
    h = bn(F.relu(conv(x.permute(0, 2, 1), "conv1")), "bn1")
    h = F.max_pool1d(bn(F.softmax(conv(h, "conv2"), dim=1), "bn2"), 2, 2)
    h = bn(F.softmax(conv(h, "conv3"), dim=1), "bn3")
    h = F.max_pool1d(bn(F.softmax(conv(h, "conv4"), dim=1), "bn4"), 1, 1)
    assert h.shape == (2, 100, 115)
    h = torch.sigmoid(F.linear(h.reshape(2, -1), state["fc1.weight"], state["fc1.bias"]))
    expected = torch.sigmoid(F.linear(h, state["fc2.weight"], state["fc2.bias"]))
    assert float(expected.std()) > 1e-2  # the weights give a non-degenerate output
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


# --- proposed small / tiny sizes -----------------------------------------------------------------
@pytest.mark.parametrize("cls", list(PROPOSED_SIZES), ids=lambda c: c.__name__)
@pytest.mark.parametrize("size", ["small", "tiny"])
def test_smaller_sizes_keep_the_published_names_and_train(cls, size):
    kwargs = PROPOSED_SIZES[cls][size]
    torch.manual_seed(0)
    model = cls(**kwargs).train()
    blocks = kwargs.get("num_transformer_blocks", 0)
    expected = {k for k in FULL_KEYS[cls] if not k.startswith("promoter_transformer.") or int(k.split(".")[1]) < blocks}
    assert set(model.state_dict()) == expected
    x = one_hot(3, 250)
    out = model(x)
    assert out.shape == (3, model.embed_dims)
    out.pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
