"""Backbones load state dicts in the published key layout (strict) and run at every size."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from promoter_modelling.backbones.base import OPTIMIZER_RECIPES, Backbone
from promoter_modelling.backbones.registry import BACKBONES, MODEL_SIZES, backbone_names, build_backbone
from promoter_modelling.errors import InputError

NEW_BACKBONES = ["PureCNN", "PureCNNLarge", "MotifBasedFCN", "MotifBasedFCNLarge", "LegNet", "LegNetLarge",
                 "DNABERT", "DNABERTRandomInit"]
NUM_MOTIFS = 693  # the published Vierstra motif set


pytestmark = pytest.mark.usefixtures("single_thread")  # see tests/conftest.py


BERT_BASE = {"vocab_size": 4101, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2}


# --- published key -> shape tables (full size) ----------------------------------------------
def _cnn_block(prefix: str, c_in: int, c_out: int, k: int = 5) -> dict:
    return {f"{prefix}.cnn.weight": (c_out, c_in, k), f"{prefix}.cnn.bias": (c_out,),
            f"{prefix}.gn.weight": (c_out,), f"{prefix}.gn.bias": (c_out,)}


PURE_CNN_KEYS = {
    **_cnn_block("promoter_cnn.0", 4, 512), **_cnn_block("promoter_cnn.1", 512, 768),
    **_cnn_block("promoter_cnn.3", 768, 768), **_cnn_block("promoter_cnn.4", 768, 1024),
    "linear1.weight": (2048, 9216), "linear1.bias": (2048,),
    "linear2.weight": (1024, 2048), "linear2.bias": (1024,),
}
PURE_CNN_LARGE_KEYS = {
    **_cnn_block("promoter_cnn.0", 4, 512), **_cnn_block("promoter_cnn.1", 512, 768),
    **_cnn_block("promoter_cnn.3", 768, 768), **_cnn_block("promoter_cnn.4", 768, 1024),
    **_cnn_block("promoter_cnn.6", 1024, 1024), **_cnn_block("promoter_cnn.7", 1024, 1024),
    "linear1.weight": (2048, 3072), "linear1.bias": (2048,),
    "linear2.weight": (1024, 2048), "linear2.bias": (1024,),
}
MOTIF_FCN_KEYS = {
    "motifs_fcn.0.weight": (2048, NUM_MOTIFS), "motifs_fcn.0.bias": (2048,),
    "motifs_fcn.2.weight": (1024, 2048), "motifs_fcn.2.bias": (1024,),
    "motifs_fcn.4.weight": (1024, 1024), "motifs_fcn.4.bias": (1024,),
    "motifs_fcn.6.weight": (512, 1024), "motifs_fcn.6.bias": (512,),
}
MOTIF_FCN_LARGE_KEYS = {
    "motifs_fcn.0.weight": (2048, NUM_MOTIFS), "motifs_fcn.0.bias": (2048,),
    "motifs_fcn.2.weight": (4096, 2048), "motifs_fcn.2.bias": (4096,),
    "motifs_fcn.4.weight": (4096, 4096), "motifs_fcn.4.bias": (4096,),
    "motifs_fcn.6.weight": (2048, 4096), "motifs_fcn.6.bias": (2048,),
    "motifs_fcn.8.weight": (1024, 2048), "motifs_fcn.8.bias": (1024,),
    "motifs_fcn.10.weight": (1024, 1024), "motifs_fcn.10.bias": (1024,),
}


def _batch_norm(prefix: str, c: int) -> dict:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def legnet_keys(block_sizes: list[int], ks: int = 7, resize_factor: int = 4, filter_per_group: int = 2,
                se_reduction: int = 4, final_ch: int = 18) -> dict:
    """The published LegNet state dict layout, with tensorly-torch 0.5.0 CP-TRL keys (rank 0.5 of
    the (mid, mid, mid/2) weight: round(prod / sum * 0.5))."""
    keys = {"seqextractor.blc0.0.weight": (block_sizes[0], 4, ks), **_batch_norm("seqextractor.blc0.1", block_sizes[0])}
    for i, (prev, size) in enumerate(zip(block_sizes[:-1], block_sizes[1:])):
        wide, mid = size * resize_factor, prev // se_reduction
        rank = int(np.round(mid * mid * (mid // 2) * 0.5 / (mid + mid + mid // 2)))
        inv, se = f"seqextractor.inv_res_blc{i}", f"seqextractor.inv_res_blc{i}.6.fc"
        keys.update({
            f"{inv}.0.weight": (wide, prev, 1), **_batch_norm(f"{inv}.1", wide),
            f"{inv}.3.weight": (wide, filter_per_group, ks), **_batch_norm(f"{inv}.4", wide),
            f"{se}.0.weight": (mid, wide), f"{se}.0.bias": (mid,),
            f"{se}.2.weight": (mid, mid), f"{se}.2.bias": (mid,),
            f"{se}.3.mod.trl.bias": (mid // 2,), f"{se}.3.mod.trl.weight.weights": (rank,),
            f"{se}.3.mod.trl.weight.factors.factor_0": (mid, rank),
            f"{se}.3.mod.trl.weight.factors.factor_1": (mid, rank),
            f"{se}.3.mod.trl.weight.factors.factor_2": (mid // 2, rank),
            f"{se}.5.weight": (wide, mid + mid // 2), f"{se}.5.bias": (wide,),
            f"{inv}.7.weight": (prev, wide, 1), **_batch_norm(f"{inv}.8", prev),
            f"seqextractor.resize_blc{i}.0.weight": (size, 2 * prev, ks),
            **_batch_norm(f"seqextractor.resize_blc{i}.1", size),
        })
    keys.update({"mapper.0.weight": (final_ch, block_sizes[-1], 1), "mapper.0.bias": (final_ch,), "bins": (final_ch,)})
    return keys


def bert_keys(cfg: dict) -> dict:
    """Hugging Face BertModel (with pooler) keys under the published `model.` attribute."""
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    keys = {"model.embeddings.word_embeddings.weight": (cfg["vocab_size"], h),
            "model.embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], h),
            "model.embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], h),
            "model.embeddings.LayerNorm.weight": (h,), "model.embeddings.LayerNorm.bias": (h,),
            "model.pooler.dense.weight": (h, h), "model.pooler.dense.bias": (h,)}
    for i in range(cfg["num_hidden_layers"]):
        layer = f"model.encoder.layer.{i}"
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            keys.update({f"{layer}.{name}.weight": (h, h), f"{layer}.{name}.bias": (h,)})
        keys.update({f"{layer}.attention.output.LayerNorm.weight": (h,), f"{layer}.attention.output.LayerNorm.bias": (h,),
                     f"{layer}.intermediate.dense.weight": (inter, h), f"{layer}.intermediate.dense.bias": (inter,),
                     f"{layer}.output.dense.weight": (h, inter), f"{layer}.output.dense.bias": (h,),
                     f"{layer}.output.LayerNorm.weight": (h,), f"{layer}.output.LayerNorm.bias": (h,)})
    return keys


def published_state_dict(table: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the table's shapes (integer counters and bins where the published model has them)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in table.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key == "bins":
            out[key] = torch.arange(shape[0])
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            out[key] = torch.randn(shape, generator=generator) * 0.02
    return out


def _inputs(kind: str, batch: int, length: int = 250, num_motifs: int = NUM_MOTIFS, vocab: int = 4101) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    if kind == "onehot":
        return torch.nn.functional.one_hot(torch.randint(0, 4, (batch, length), generator=generator), 4).float()
    if kind == "tokens":
        ids = torch.randint(5, vocab, (batch, length - 3), generator=generator)
        return ids
    return torch.randint(0, 4, (batch, num_motifs), generator=generator).float()


FULL_CASES = [
    ("PureCNN", {}, PURE_CNN_KEYS, 1024, 29.84),
    ("PureCNNLarge", {}, PURE_CNN_LARGE_KEYS, 1024, None),
    ("MotifBasedFCN", {"num_motifs": NUM_MOTIFS}, MOTIF_FCN_KEYS, 512, 5.09),
    ("MotifBasedFCNLarge", {"num_motifs": NUM_MOTIFS}, MOTIF_FCN_LARGE_KEYS, 1024, 38.13),
    ("LegNet", {}, legnet_keys([256, 128, 128, 64, 64, 64, 64]), 64, 1.85),
    ("LegNetLarge", {}, legnet_keys([1024, 512, 512, 256, 256, 256, 256]), 256, 33.06),
]


@pytest.mark.parametrize("name,kwargs,table,embed_dims,million_params", FULL_CASES, ids=[c[0] for c in FULL_CASES])
def test_published_state_dict_loads_strict(name, kwargs, table, embed_dims, million_params):
    model = build_backbone(name, "full", **kwargs)
    state = published_state_dict(table)
    model.load_state_dict(state, strict=True)
    for key in list(table)[:3] + list(table)[-3:]:
        assert torch.equal(model.state_dict()[key], state[key].to(model.state_dict()[key].dtype)), key
    assert model.embed_dims == embed_dims
    if million_params is not None:
        assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == million_params
    model.eval()
    with torch.no_grad():
        out = model(_inputs(model.input_kind, 2))
    assert out.shape == (2, embed_dims)
    assert torch.isfinite(out).all()


def test_dnabert_published_layout_loads_strict():
    model = build_backbone("DNABERT", "full", config=BERT_BASE)  # BERT-base shape, no weights needed
    table = bert_keys(BERT_BASE)
    state = published_state_dict(table)
    # checkpoints from older transformers also carry the position-id buffer
    state["model.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.model.pooler.dense.weight, state["model.pooler.dense.weight"])
    assert model.embed_dims == 768
    model.eval()
    with torch.no_grad():
        out = model(_inputs("tokens", 2))
    assert out.shape == (2, 768)


def test_registry_lists_every_backbone():
    for name in NEW_BACKBONES:
        assert name in BACKBONES
        assert set(BACKBONES[name].sizes) == set(MODEL_SIZES)


@pytest.mark.parametrize("name", NEW_BACKBONES)
def test_tiny_forward_backward(name):
    extra = {"num_motifs": 11} if "Motif" in name else {}
    model = build_backbone(name, "tiny", **extra)
    model.train()
    x = _inputs(model.input_kind, 3, num_motifs=11)
    out = model(x)
    assert out.shape == (3, model.embed_dims)
    out.pow(2).mean().backward()
    # LegNet's `mapper` is unused, as published
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad and not n.startswith("mapper.")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


PUBLISHED_TABLES = {name: table for name, _, table, _, _ in FULL_CASES}
PUBLISHED_TABLES.update({"DNABERT": bert_keys(BERT_BASE), "DNABERTRandomInit": bert_keys(BERT_BASE)})


def _name_pattern(keys) -> set[str]:
    return {re.sub(r"\d+", "#", key) for key in keys}


@pytest.mark.parametrize("name", NEW_BACKBONES)
def test_sizes_use_the_published_names(name):
    """small and tiny use the published parameter names (layer counts may differ)."""
    extra = {"num_motifs": 11} if "Motif" in name else {}
    published = _name_pattern(PUBLISHED_TABLES[name])
    for size in ("small", "tiny"):
        assert _name_pattern(build_backbone(name, size, **extra).state_dict()) == published, size


def test_purecnn_linear_width_follows_length():
    model = build_backbone("PureCNN", "full", seq_len=200)
    assert model.linear1.in_features == 7168  # the published LazyLinear width at 200 bp
    assert build_backbone("PureCNNLarge", "full", seq_len=200).linear1.in_features == 2048
    with pytest.raises(InputError, match="250"):
        build_backbone("PureCNN", "tiny")(_inputs("onehot", 1, length=200))


def test_motif_fcn_needs_num_motifs():
    with pytest.raises(InputError, match="num_motifs"):
        build_backbone("MotifBasedFCN", "tiny")
    model = build_backbone("MotifBasedFCN", "tiny", num_motifs=5)
    with pytest.raises(InputError, match="5 motifs"):
        model(torch.zeros(2, 6))


def test_cp_tensor_regression_matches_dense_contraction():
    from promoter_modelling.backbones.legnet import Bilinear, CPTensorRegression

    torch.manual_seed(0)
    layer = CPTensorRegression((6, 5), 3, rank=0.5, bias=True)
    assert layer.weight.rank == int(np.round(6 * 5 * 3 * 0.5 / 14))
    x = torch.randn(4, 6, 5)
    dense = torch.einsum("bij,ijk->bk", x, layer.weight.to_tensor()) + layer.bias
    torch.testing.assert_close(layer(x), dense)

    bilinear = Bilinear(8, 4, rank=0.5, bias=True)
    v = torch.randn(4, 8)
    outer = v.unsqueeze(-1) @ v.unsqueeze(-2)
    torch.testing.assert_close(bilinear(v), bilinear.trl(outer))
    # published init: weights 1 and the reconstructed weight tensor of std ~0.00075
    assert torch.equal(bilinear.trl.weight.weights, torch.ones_like(bilinear.trl.weight.weights))
    big = Bilinear(64, 32, rank=0.5, bias=True)
    assert 0.0004 < float(big.trl.weight.to_tensor().std()) < 0.0012


def test_legnet_uses_the_onecycle_recipe():
    assert build_backbone("LegNet", "tiny").optimizer_recipe == "onecycle"
    assert build_backbone("LegNetLarge", "tiny").optimizer_recipe == "onecycle"
    assert getattr(build_backbone("PureCNN", "tiny"), "optimizer_recipe", "adamw") == "adamw"


@pytest.mark.parametrize("name", backbone_names())
def test_every_backbone_keeps_the_base_contract(name):
    """Each registered backbone is a Backbone with a known input kind and optimizer recipe, returns
    (B, features) for a valid batch of its input kind, and its head maps them to the outputs
    (a fixed feature extractor has no head)."""
    extra = {"num_motifs": 7} if name.startswith("MotifBasedFCN") else {}
    model = build_backbone(name, "tiny", **extra)  # tiny DNABERT / Enformer sizes are random-init configs
    assert isinstance(model, Backbone)
    assert model.input_kind in ("onehot", "tokens", "motif_counts")
    assert model.optimizer_recipe in OPTIMIZER_RECIPES
    assert model.input_length is None or isinstance(model.input_length, int)
    if name in ("PureCNN", "MPRAnn"):
        assert model.input_length == 250
    model.eval()
    with torch.no_grad():
        out = model(_inputs(model.input_kind, 2, length=model.input_length or 250, num_motifs=7))
    assert out.ndim == 2 and out.shape[0] == 2
    if model.features_only:
        assert model.embed_dims is None
        return
    assert isinstance(model.embed_dims, int) and model.embed_dims > 0
    outputs = 5 if not model.multi_task else 3  # Malinois is built for the 5 Malinois MPRA cells by default
    if model.multi_task:
        assert out.shape == (2, model.embed_dims)
    with torch.no_grad():
        assert model.make_head(outputs)(out).shape == (2, outputs)
