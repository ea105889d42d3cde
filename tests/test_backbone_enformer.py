"""The Enformer family: published architecture counts, the own weight loader, pooling, frozen
trunks in eval mode and sliced inference."""

from __future__ import annotations

import json
import os

import pytest
import torch

pytest.importorskip("enformer_pytorch")

from conftest import raises  # noqa: E402

from promoter_modelling.backbones import enformer as enf  # noqa: E402
from promoter_modelling.backbones.enformer import (  # noqa: E402
    Enformer,
    EnformerFrozenBase,
    EnformerFullFrozenBase,
    EnformerRandomInit,
    load_pretrained_enformer,
    num_bins,
)
from promoter_modelling.errors import InputError  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")  # see tests/conftest.py

TINY = {"dim": 48, "depth": 1, "heads": 2, "attn_dim_key": 8, "num_downsamples": 7, "dim_divisible_by": 8,
        "output_heads": {"human": 16, "mouse": 8}}
SMALL = {"dim": 96, "depth": 2, "heads": 4, "attn_dim_key": 16, "num_downsamples": 7, "dim_divisible_by": 16,
         "output_heads": {"human": 32, "mouse": 16}}
LENGTHS = (200, 250, 1177)

# representative keys of the published `backbone.model.*` layout (v2.md 5.5)
PUBLISHED_SHAPES = {
    "stem.0.weight": (768, 4, 15),
    "stem.1.fn.0.running_mean": (768,),
    "stem.2.to_attn_logits.weight": (768, 768, 1, 1),
    "conv_tower.0.0.2.weight": (768, 768, 5),
    "transformer.0.0.fn.1.to_q.weight": (512, 1536),
    "transformer.0.0.fn.1.to_v.weight": (1536, 1536),
    "transformer.0.0.fn.1.rel_content_bias": (1, 8, 1, 64),
    "transformer.0.0.fn.1.to_rel_k.weight": (512, 192),
    "transformer.0.1.fn.1.weight": (3072, 1536),
    "final_pointwise.1.2.weight": (3072, 1536, 1),
    "_heads.human.0.weight": (5313, 3072),
    "_trunk.1.0.weight": (768, 4, 15),
}

# class -> (total parameters, trainable, state-dict keys of self.model, embed_dims)
FULL_COUNTS = {
    Enformer: (251_224_365, 251_224_365, 570, 3072),
    EnformerFrozenBase: (251_224_365, 3_073, 570, 3072),
    EnformerFullFrozenBase: (251_221_292, 0, 570, None),
    EnformerRandomInit: (229_857_796, 229_857_796, 568, 3072),
}


def one_hot(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    codes = torch.randint(0, 4, (batch, length), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.one_hot(codes, 4).float()


def randomize_bn_stats(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm running statistics, so eval-mode outputs depend on them."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=generator))
            module.running_var.copy_(1 + torch.rand(module.running_var.shape, generator=generator))


# --- the published architecture, built on the meta device (no memory, no download) ---------------
@pytest.mark.parametrize("cls", list(FULL_COUNTS), ids=lambda c: c.__name__)
def test_full_size_counts_and_keys(cls):
    total, trainable, model_keys, embed_dims = FULL_COUNTS[cls]
    with torch.device("meta"):
        # the pretrained architecture is the EnformerConfig default; RandomInit ignores the path
        backbone = cls(enformer_path="/nonexistent") if cls is EnformerRandomInit else cls(config={})
    assert sum(p.numel() for p in backbone.parameters()) == total
    assert sum(p.numel() for p in backbone.parameters() if p.requires_grad) == trainable
    state = backbone.model.state_dict()
    assert len(state) == model_keys
    assert sum(key.startswith("_trunk.") for key in state) == 283  # aliases of the same tensors
    assert backbone.embed_dims == embed_dims
    shapes = {**PUBLISHED_SHAPES, "_heads.flu.0.weight": (3, 3072)} if cls is EnformerRandomInit \
        else PUBLISHED_SHAPES
    for key, shape in shapes.items():
        if cls is EnformerRandomInit and key.startswith("_heads.human"):
            continue
        assert tuple(state[key].shape) == shape, key
    assert backbone.model._trunk[1][0].weight is backbone.model.stem[0].weight  # `_trunk.*` are aliases
    full_state = backbone.state_dict()
    assert all(key.startswith(("model.", "attention_pool.")) for key in full_state)
    assert ("attention_pool.weight" in full_state) == (embed_dims is not None)
    assert backbone.input_kind == "onehot" and backbone.optimizer_recipe == "adamw"
    if cls is EnformerRandomInit:
        assert backbone.model.output_heads == {"flu": 3}
        assert sum(p.numel() for p in backbone.model._heads.parameters()) == 9_219
    else:
        assert sum(p.numel() for p in backbone.model._heads.parameters()) == 21_375_788


def test_full_size_random_init_runs_on_200bp():
    torch.manual_seed(0)
    backbone = EnformerRandomInit().eval()
    with torch.no_grad():
        out = backbone(one_hot(2, 200))
    assert out.shape == (2, 3072) and torch.isfinite(out).all()
    del backbone


def test_num_bins():
    assert [num_bins(n) for n in LENGTHS] == [2, 2, 10]
    assert num_bins(196_608) == 1536


# --- shapes and pooling ---------------------------------------------------------------------------
@pytest.mark.parametrize("length", LENGTHS)
def test_output_shapes(length):
    torch.manual_seed(0)
    x = one_hot(3, length)
    for cls in (Enformer, EnformerFrozenBase, EnformerRandomInit):
        backbone = cls(config=TINY).eval()
        with torch.no_grad():
            assert backbone(x).shape == (3, 2 * TINY["dim"]), cls.__name__
    full = EnformerFullFrozenBase(config=TINY)
    bins = 10 if length == 1177 else 2
    assert full.feature_dims(length) == bins * (16 + 8)
    with torch.no_grad():
        features = full(x)
        heads = full.model(x)
    assert features.shape == (3, bins * 24)
    # bin-major: bin 0's human then mouse outputs, then bin 1's ...
    expected = torch.cat([heads["human"], heads["mouse"]], dim=2).reshape(3, -1)
    torch.testing.assert_close(features, expected, rtol=0, atol=0)
    assert features[:, :16].equal(heads["human"][:, 0]) and features[:, 16:24].equal(heads["mouse"][:, 0])


def test_attention_pooling_matches_explicit_computation():
    torch.manual_seed(0)
    backbone = Enformer(config=TINY).eval()
    x = one_hot(4, 1177)
    with torch.no_grad():
        out = backbone(x)
        e = backbone.model(x, return_only_embeddings=True)
    assert e.shape == (4, 10, 96)
    logits = e @ backbone.attention_pool.weight[0] + backbone.attention_pool.bias[0]  # (B, n)
    weights = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
    weights = weights / weights.sum(dim=1, keepdim=True)
    expected = (weights.unsqueeze(-1) * e).sum(dim=1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_enformer_trains_end_to_end():
    torch.manual_seed(0)
    backbone = Enformer(config=TINY).train()
    backbone(one_hot(3, 250)).pow(2).mean().backward()
    assert backbone.attention_pool.weight.grad is not None
    assert backbone.model.stem[0].weight.grad is not None and backbone.model.stem[0].weight.grad.abs().sum() > 0
    assert backbone.model._heads["human"][0].weight.grad is None  # unused heads get no gradient


# --- frozen trunks --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [EnformerFrozenBase, EnformerFullFrozenBase], ids=lambda c: c.__name__)
def test_frozen_trunk_stays_in_eval_mode(cls):
    torch.manual_seed(0)
    backbone = cls(config=TINY)
    backbone.train()
    assert backbone.training and not backbone.model.training
    assert not any(m.training for m in backbone.model.modules())
    trainable = {name for name, p in backbone.named_parameters() if p.requires_grad}
    assert trainable == ({"attention_pool.weight", "attention_pool.bias"} if cls is EnformerFrozenBase else set())
    stats = {k: v.clone() for k, v in backbone.model.state_dict().items() if "running" in k or "num_batches" in k}
    x = one_hot(5, 250)
    first, second = backbone(x), backbone(x)  # dropout would make these differ
    assert torch.equal(first, second)
    after = backbone.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in stats.items())
    if cls is EnformerFrozenBase:
        first.sum().backward()
        assert backbone.attention_pool.weight.grad is not None
    backbone.eval()
    backbone.train(True)
    assert not backbone.model.training


def test_trainable_enformer_follows_train_mode():
    backbone = Enformer(config=TINY)
    backbone.train()
    assert backbone.model.training
    backbone.eval()
    assert not backbone.model.training


# --- sliced inference -----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [Enformer, EnformerFullFrozenBase], ids=lambda c: c.__name__)
def test_sliced_inference_equals_one_pass(cls):
    torch.manual_seed(0)
    backbone = cls(config=TINY).eval()
    randomize_bn_stats(backbone.model)
    x = one_hot(7, 250)
    with torch.no_grad():
        assert backbone.slice_size(x) is None
        whole = backbone(x)
        backbone.cpu_inference_slice_bytes = 3 * backbone.inference_bytes_per_sequence(250) + 1  # 3 per slice
        assert backbone.slice_size(x) == 3
        sliced = backbone(x)
    torch.testing.assert_close(sliced, whole, rtol=1e-5, atol=1e-6)
    # with gradients through a trainable trunk, or in train mode, the batch is never sliced
    if cls is Enformer:
        assert backbone.slice_size(x) is None
        backbone.train()
        with torch.no_grad():
            assert backbone.slice_size(x) is None
    else:  # a frozen trunk needs no graph: sliced even with gradients enabled
        assert backbone.slice_size(x) == 3
        torch.testing.assert_close(backbone(x), whole, rtol=1e-5, atol=1e-6)


# --- the weight loader ----------------------------------------------------------------------------
def write_pretrained(folder, model, state: dict | None = None, fmt: str = "bin") -> str:
    os.makedirs(folder, exist_ok=True)
    config = model.config.to_dict()  # includes HF bookkeeping keys, as a hub config.json does
    with open(os.path.join(folder, "config.json"), "w") as handle:
        json.dump(config, handle)
    state = model.state_dict() if state is None else state
    if fmt == "bin":
        torch.save(state, os.path.join(folder, "pytorch_model.bin"))
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous().clone() for k, v in state.items()}, os.path.join(folder, "model.safetensors"))
    return str(folder)


@pytest.fixture(scope="module")
def source_model():
    torch.manual_seed(1)
    model = enf.build_enformer(SMALL).eval()
    with torch.no_grad():
        randomize_bn_stats(model, seed=1)
        for p in model.parameters():  # zero-initialised to_out layers would hide attention errors
            p.add_(0.01 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("variant", ["with_aliases", "primary_only", "safetensors"])
def test_local_folder_round_trip(tmp_path, source_model, variant):
    state = source_model.state_dict()
    if variant != "with_aliases":
        state = {k: v for k, v in state.items() if not k.startswith("_trunk.")}
    folder = write_pretrained(tmp_path / "enformer", source_model, state,
                              fmt="safetensors" if variant == "safetensors" else "bin")
    backbone = Enformer(enformer_path=folder).eval()
    assert backbone.model.target_length == -1
    assert all(p.requires_grad and p.dtype == torch.float32 for p in backbone.parameters())
    assert backbone.model._trunk[1][0].weight is backbone.model.stem[0].weight
    assert len(backbone.model.state_dict()) == len(source_model.state_dict())
    assert backbone.model.use_tf_gamma is False  # as the checkpoint config says
    for key, value in source_model.state_dict().items():
        assert torch.equal(backbone.model.state_dict()[key], value), key
    x = one_hot(3, 1177)
    with torch.no_grad():
        assert torch.equal(backbone.model(x, return_only_embeddings=True),
                           source_model(x, return_only_embeddings=True))
        full = EnformerFullFrozenBase(enformer_path=folder)
        out = source_model(x)
        expected = torch.cat([out["human"], out["mouse"]], dim=2).flatten(1)
        assert torch.equal(full(x), expected)
        assert full(x).shape == (3, 10 * 48)


def test_use_tf_gamma_is_kept_from_the_config(tmp_path, source_model):
    folder = write_pretrained(tmp_path / "enformer", source_model)
    with open(os.path.join(folder, "config.json")) as handle:
        config = json.load(handle)
    config.pop("use_tf_gamma")  # absent: False (EnformerConfig default)
    with open(os.path.join(folder, "config.json"), "w") as handle:
        json.dump(config, handle)
    assert load_pretrained_enformer(folder).use_tf_gamma is False
    config["use_tf_gamma"] = True
    with open(os.path.join(folder, "config.json"), "w") as handle:
        json.dump(config, handle)
    model = load_pretrained_enformer(folder)
    assert model.use_tf_gamma is True
    assert all(m.use_tf_gamma for m in model.modules() if type(m).__name__ == "Attention")


def test_half_precision_checkpoint_loads_as_float32(tmp_path, source_model):
    state = {k: v.half() if v.is_floating_point() else v for k, v in source_model.state_dict().items()}
    folder = write_pretrained(tmp_path / "enformer", source_model, state)
    backbone = EnformerFrozenBase(enformer_path=folder)
    assert all(p.dtype == torch.float32 for p in backbone.parameters())
    assert torch.equal(backbone.model.stem[0].weight, source_model.stem[0].weight.half().float())
    assert [n for n, p in backbone.named_parameters() if p.requires_grad] == ["attention_pool.weight",
                                                                              "attention_pool.bias"]


def test_hf_prefixed_keys_load(tmp_path, source_model):
    state = {f"enformer.{k}": v for k, v in source_model.state_dict().items() if not k.startswith("_trunk.")}
    folder = write_pretrained(tmp_path / "enformer", source_model, state)
    model = load_pretrained_enformer(folder)
    assert torch.equal(model.stem[0].weight, source_model.stem[0].weight)


def test_mismatched_state_dicts_are_one_line_errors(tmp_path, source_model):
    state = dict(source_model.state_dict())
    folder = write_pretrained(tmp_path / "extra", source_model, {**state, "extra.weight": torch.zeros(1)})
    raises(f"cannot load Enformer weights from {folder!r} (state dict does not match the config: "
           "1 unexpected keys, e.g. 'extra.weight'); download the hub repository "
           "EleutherAI/enformer-official-rough (config.json and pytorch_model.bin) into a folder and pass "
           "--enformer_path <folder>", Enformer, enformer_path=folder)
    missing = {k: v for k, v in state.items() if k != "stem.0.bias"}
    folder = write_pretrained(tmp_path / "missing", source_model, missing)
    raises("cannot load Enformer weights from ... (state dict does not match the config: 1 missing keys, "
           "e.g. 'stem.0.bias'); ... --enformer_path <folder>", Enformer, enformer_path=folder)
    shapes = {**state, "stem.0.bias": torch.zeros(3)}
    folder = write_pretrained(tmp_path / "shape", source_model, shapes)
    raises("cannot load Enformer weights from ... (...size mismatch...); ... --enformer_path <folder>",
           Enformer, enformer_path=folder)
    folder = write_pretrained(tmp_path / "noweights", source_model)
    os.remove(os.path.join(folder, "pytorch_model.bin"))
    raises("cannot load Enformer weights from ... (no model.safetensors or pytorch_model.bin in the folder); "
           "... --enformer_path <folder>", Enformer, enformer_path=folder)
    with open(os.path.join(folder, "pytorch_model.bin"), "w") as handle:
        handle.write("not a checkpoint")
    raises("cannot load Enformer weights from ... --enformer_path <folder>", Enformer, enformer_path=folder)


def test_missing_folder_fails_before_any_network_call(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(enf, "_hub_folder", no_network)
    missing = str(tmp_path / "nope")
    raises(f"Enformer folder {missing!r} does not exist; download the hub repository "
           "EleutherAI/enformer-official-rough (config.json and pytorch_model.bin) into a folder and pass "
           "--enformer_path <folder>", Enformer, enformer_path=missing)
    raises("Enformer folder './nope' does not exist; ... --enformer_path <folder>", EnformerFrozenBase,
           enformer_path="./nope")


def test_unreachable_hub_is_a_one_line_error(monkeypatch):
    def offline(repo_id):
        raise OSError("Name or service not known\nmore detail")

    monkeypatch.setattr(enf, "_hub_folder", offline)
    raises("cannot load Enformer weights from 'EleutherAI/enformer-official-rough' (Name or service not known); "
           "download the hub repository EleutherAI/enformer-official-rough (config.json and pytorch_model.bin) "
           "into a folder and pass --enformer_path <folder>", Enformer)


def test_hub_snapshot_folder_is_loaded(tmp_path, monkeypatch, source_model):
    folder = write_pretrained(tmp_path / "snapshot", source_model)
    monkeypatch.setattr(enf, "_hub_folder", lambda repo_id: folder)
    backbone = EnformerFullFrozenBase(enformer_path="someone/enformer-copy")
    assert torch.equal(backbone.model.stem[0].weight, source_model.stem[0].weight)


def test_invalid_config_is_an_input_error():
    for bad in ({"heads": 3}, {"dim_divisible_by": 7}, {"dim_divisible_by": 48}, {"num_downsamples": 2}):
        with pytest.raises(InputError, match="invalid Enformer config"):
            Enformer(config={**TINY, **bad})
