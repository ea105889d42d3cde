import pytest
import torch

from promoter_modelling.backbones.registry import build_backbone


def published_mtlucifer_layout(d=1024, heads=8, blocks=5, c1=256, c2=512) -> dict[str, tuple]:
    """Keys and shapes of the published MTLucifer state dict, written out from its description."""
    layout = {"cls_token_embedding": (1, 1, d)}
    for i, (cin, cout) in enumerate([(4, c1), (c1, c2), (c2, d)]):
        layout[f"promoter_cnn.{i}.cnn.weight"] = (cout, cin, 5)
        for name in ("cnn.bias", "gn.weight", "gn.bias"):
            layout[f"promoter_cnn.{i}.{name}"] = (cout,)
    for b in range(blocks):
        p = f"promoter_transformer.{b}."
        layout.update({p + "layer_norm1.weight": (d,), p + "layer_norm1.bias": (d,), p + "xk.weight": (d, d),
                       p + "xq.weight": (d, d), p + "xv.weight": (d, d), p + "rotary_emb.freqs": (d // heads // 2,),
                       p + "fc1.weight": (d, d), p + "layer_norm2.weight": (d,), p + "layer_norm2.bias": (d,),
                       p + "fc2.weight": (4 * d, d), p + "fc2.bias": (4 * d,), p + "fc3.weight": (d, 4 * d),
                       p + "fc3.bias": (d,)})
    return layout


def test_published_state_dict_loads_strictly_and_counts_match():
    model = build_backbone("MTLucifer", "full")
    layout = published_mtlucifer_layout()
    state = {k: torch.randn(shape) for k, shape in layout.items()}
    model.load_state_dict(state, strict=True)
    assert sum(v.numel() for v in model.state_dict().values()) == 66_249_280
    assert model.promoter_transformer[2].xq.weight.data_ptr() != 0
    key = "promoter_transformer.4.fc3.bias"
    torch.testing.assert_close(model.state_dict()[key], state[key])


@pytest.mark.parametrize("size, dims", [("small", 64), ("tiny", 32)])
def test_smaller_sizes_keep_the_parameter_names(size, dims):
    small = build_backbone("MTLucifer", size).eval()
    full_names = set(published_mtlucifer_layout())
    assert set(small.state_dict()) <= full_names
    out = small(torch.rand(3, 250, 4))
    assert out.shape == (3, dims)
    with pytest.raises(RuntimeError):
        small.load_state_dict({k: torch.randn(s) for k, s in published_mtlucifer_layout().items()}, strict=True)


def test_cls_output_depends_on_sequence_content_and_position():
    torch.manual_seed(0)
    model = build_backbone("MTLucifer", "tiny").eval()
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 250)), 4).float()
    shifted = torch.roll(x, 7, dims=1)
    with torch.no_grad():
        a, b = model(x), model(shifted)
    assert not torch.allclose(a, b, atol=1e-4)  # rotary positions make the model position-aware
