"""Malinois (boda2 BassetBranched): published key layout and parameter counts, a forward pass equal
to an independent functional transcription of the published computation, and its L1KLmixed loss."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import raises

from promoter_modelling.backbones.malinois import GroupedLinear, Malinois, flatten_factor, l1_kl_mixed

pytestmark = pytest.mark.usefixtures("single_thread")  # see tests/conftest.py


def _norm(prefix: str, width: int) -> dict:
    return {f"{prefix}.bn_layer.weight": (width,), f"{prefix}.bn_layer.bias": (width,),
            f"{prefix}.bn_layer.running_mean": (width,), f"{prefix}.bn_layer.running_var": (width,),
            f"{prefix}.bn_layer.num_batches_tracked": ()}


def published_keys(n: int) -> dict:
    """The 36 state-dict keys of the published BassetBranched (spec v2 §5.4) -> shapes."""
    return {
        "conv1.conv.weight": (300, 4, 19), "conv1.conv.bias": (300,), **_norm("conv1", 300),
        "conv2.conv.weight": (200, 300, 11), "conv2.conv.bias": (200,), **_norm("conv2", 200),
        "conv3.conv.weight": (200, 200, 7), "conv3.conv.bias": (200,), **_norm("conv3", 200),
        "linear1.linear.weight": (1000, 2600), "linear1.linear.bias": (1000,), **_norm("linear1", 1000),
        "branched.branched_layer_1.weight": (n, 1000, 140), "branched.branched_layer_1.bias": (n, 1, 140),
        "branched.branched_layer_2.weight": (n, 140, 140), "branched.branched_layer_2.bias": (n, 1, 140),
        "branched.branched_layer_3.weight": (n, 140, 140), "branched.branched_layer_3.bias": (n, 1, 140),
        "output.weight": (n, 140, 1), "output.bias": (n, 1, 1),
    }


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def malinois5() -> Malinois:
    torch.manual_seed(0)
    return Malinois(n_outputs=5)


# --- layout and sizes -------------------------------------------------------------------------
def test_published_keys_shapes_and_counts(malinois5):
    state = malinois5.model.state_dict()
    expected = published_keys(5)
    assert len(expected) == 36
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert len(list(malinois5.model.parameters())) == 24
    assert count(malinois5.model) == 4_466_705
    assert count(malinois5.make_head(5)) == 705
    assert list(malinois5.state_dict()) == [f"model.{k}" for k in expected]


@pytest.mark.parametrize("n, total, head", [(3, 4_107_183, 423), (1, 3_747_661, 141)])
def test_parameter_counts_for_other_output_numbers(n, total, head):
    backbone = Malinois(n_outputs=n)
    assert {k: tuple(v.shape) for k, v in backbone.model.state_dict().items()} == published_keys(n)
    assert count(backbone.model) == total
    assert count(backbone.make_head(n)) == head


def test_class_contract(malinois5):
    assert malinois5.optimizer_recipe == "malinois"
    assert malinois5.multi_task is False
    assert malinois5.input_kind == "onehot"
    assert malinois5.embed_dims == 140
    with pytest.raises(ValueError, match="n_outputs=5"):
        malinois5.make_head(3)


def test_strict_load_of_published_layout():
    torch.manual_seed(1)
    published = {}
    for key, shape in published_keys(5).items():
        value = torch.tensor(7) if key.endswith("num_batches_tracked") else torch.randn(shape)
        published[f"model.{key}"] = value
    backbone = Malinois(n_outputs=5)
    backbone.load_state_dict(published, strict=True)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, published[key]), key
    incomplete = dict(published)
    del incomplete["model.branched.branched_layer_2.bias"]
    with pytest.raises(RuntimeError, match="branched_layer_2.bias"):
        Malinois(n_outputs=5).load_state_dict(incomplete, strict=True)


def test_flatten_factor():
    assert flatten_factor(600) == 13
    with pytest.raises(ValueError, match="601"):
        flatten_factor(601)
    with pytest.raises(ValueError, match="input_len"):
        Malinois(input_len=612)  # 612/12 = 51, 51 + 2 is not divisible by 4


# --- forward against an independent transcription ---------------------------------------------
def grouped_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Block g of x (contiguous, weight.shape[1] wide) times weight[g] plus bias[g], concatenated."""
    width = weight.shape[1]
    return torch.cat([x[:, g * width:(g + 1) * width] @ weight[g] + bias[g, 0] for g in range(weight.shape[0])],
                     dim=1)


def published_forward(sd: dict, seq: torch.Tensor, n: int, kernels=(19, 11, 7), input_len: int = 600) -> torch.Tensor:
    """The published Malinois forward (bb:1105-1117 + boda encode/decode), eval mode, functional."""
    length = seq.shape[1]
    left = (input_len - length) // 2
    x = F.pad(seq.permute(0, 2, 1), (left, input_len - length - left))

    def conv_block(x, name, k):
        x = F.pad(x, ((k - 1) // 2, k - 1 - (k - 1) // 2))
        x = F.conv1d(x, sd[f"{name}.conv.weight"], sd[f"{name}.conv.bias"])
        x = F.batch_norm(x, sd[f"{name}.bn_layer.running_mean"], sd[f"{name}.bn_layer.running_var"],
                         sd[f"{name}.bn_layer.weight"], sd[f"{name}.bn_layer.bias"], training=False, eps=1e-5)
        return F.relu(x)

    x = F.max_pool1d(conv_block(x, "conv1", kernels[0]), 3)
    x = F.max_pool1d(conv_block(x, "conv2", kernels[1]), 4)
    x = conv_block(x, "conv3", kernels[2])
    x = F.max_pool1d(F.pad(x, (1, 1)), 4)
    x = x.reshape(x.shape[0], -1)  # channel-major
    x = F.linear(x, sd["linear1.linear.weight"], sd["linear1.linear.bias"])
    x = F.batch_norm(x, sd["linear1.bn_layer.running_mean"], sd["linear1.bn_layer.running_var"],
                     sd["linear1.bn_layer.weight"], sd["linear1.bn_layer.bias"], training=False, eps=1e-5)
    x = torch.cat([F.relu(x)] * n, dim=1)
    for i in (1, 2, 3):
        x = grouped_reference(x, sd[f"branched.branched_layer_{i}.weight"], sd[f"branched.branched_layer_{i}.bias"])
        if i < 3:
            x = F.relu(x)
    return x


def randomise(backbone: Malinois, seed: int) -> None:
    """Random BatchNorm statistics and affine parameters, and branch weights with unit gain (boda's
    init, with fan_in = in*out, makes the outputs so small that a 1e-5 tolerance would hide errors)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in backbone.modules():
            if isinstance(module, GroupedLinear):
                shape = module.weight.shape
                module.weight.copy_(torch.randn(shape, generator=generator) * (2 / shape[1]) ** 0.5)
            if isinstance(module, torch.nn.BatchNorm1d):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.5)
                module.running_var.copy_(torch.rand(size, generator=generator) * 2 + 0.2)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.2)


@pytest.mark.parametrize("length", [200, 250, 199])
def test_forward_matches_published_computation(malinois5, length):
    randomise(malinois5, seed=length)
    malinois5.eval()
    generator = torch.Generator().manual_seed(length)
    seq = F.one_hot(torch.randint(0, 4, (3, length), generator=generator), 4).float()
    with torch.no_grad():
        out = malinois5(seq)
        expected = published_forward(malinois5.model.state_dict(), seq, 5)
    assert out.shape == (3, 140 * 5)
    assert out.abs().mean() > 0.1  # large enough for the tolerance to mean something
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-5), (out - expected).abs().max()
    head = malinois5.make_head(5)
    with torch.no_grad():
        y = head(out)
        assert y.shape == (3, 5)
        assert torch.allclose(y, grouped_reference(out, head.weight, head.bias), atol=1e-6)


def test_forward_pads_to_input_len_on_both_sides(malinois5):
    malinois5.eval()
    seq = F.one_hot(torch.randint(0, 4, (2, 200)), 4).float()
    padded = F.pad(seq, (0, 0, 200, 200))  # 600 bp with the sequence in the middle
    with torch.no_grad():
        assert torch.allclose(malinois5(seq), malinois5(padded), atol=1e-6)


def test_grouped_linear_matches_per_group_loop():
    torch.manual_seed(3)
    layer = GroupedLinear(7, 3, 4)
    x = torch.randn(5, 28)
    assert layer(x).shape == (5, 12)
    assert torch.allclose(layer(x), grouped_reference(x, layer.weight, layer.bias), atol=1e-6)


def test_grouped_linear_init_bounds():
    torch.manual_seed(4)
    layer = GroupedLinear(50, 20, 3)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(layer.weight)
    assert fan_in == 50 * 20
    weight_bound = math.sqrt(6.0 / ((1 + 3) * fan_in))  # kaiming uniform, a = sqrt(3)
    assert layer.weight.abs().max() <= weight_bound
    assert layer.weight.abs().max() > 0.9 * weight_bound
    assert layer.bias.abs().max() <= 1 / math.sqrt(fan_in)


def test_too_long_input_is_one_line_input_error(malinois5):
    raises("Malinois accepts sequences of at most 600 bp (input_len) but got 601 bp", malinois5,
           torch.zeros(1, 601, 4))


# --- loss ---------------------------------------------------------------------------------------
def numpy_l1_kl_mixed(y_hat: np.ndarray, y: np.ndarray, alpha: float = 1.0, beta: float = 5.0) -> float:
    def log_softmax(a):
        shifted = a - a.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    log_p, log_q = log_softmax(y_hat), log_softmax(y)
    kl = np.mean(np.exp(log_q) * (log_q - log_p))  # torch KLDivLoss 'mean': over every element
    return (alpha * np.mean(np.abs(y_hat - y)) + beta * kl) / (alpha + beta)


def test_l1_kl_mixed_against_numpy():
    rng = np.random.default_rng(0)
    y_hat, y = rng.normal(size=(16, 5)), rng.normal(size=(16, 5))
    got = l1_kl_mixed(torch.tensor(y_hat), torch.tensor(y)).item()
    assert got == pytest.approx(numpy_l1_kl_mixed(y_hat, y), rel=1e-10)
    got = l1_kl_mixed(torch.tensor(y_hat), torch.tensor(y), alpha=2.0, beta=0.5).item()
    assert got == pytest.approx(numpy_l1_kl_mixed(y_hat, y, 2.0, 0.5), rel=1e-10)
    # and against the torch losses boda's L1KLmixed uses (KLDivLoss 'mean', log targets)
    p, q = torch.tensor(y_hat), torch.tensor(y)
    log_p = p - p.exp().sum(dim=1, keepdim=True).log()
    log_q = q - q.exp().sum(dim=1, keepdim=True).log()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: 'mean' is not 'batchmean'
        kl = torch.nn.KLDivLoss(reduction="mean", log_target=True)(log_p, log_q)
    boda = (torch.nn.L1Loss()(p, q) + 5 * kl) / 6
    assert l1_kl_mixed(p, q).item() == pytest.approx(boda.item(), rel=1e-10)


def test_unmasked_loss_uses_kl_across_outputs(malinois5):
    rng = np.random.default_rng(1)
    y_hat, y = torch.tensor(rng.normal(size=(8, 3))), torch.tensor(rng.normal(size=(8, 3)))
    loss = malinois5.regression_loss(y_hat, y, None)
    assert loss.item() == pytest.approx(numpy_l1_kl_mixed(y_hat.numpy(), y.numpy()), rel=1e-10)
    assert loss.item() > (y_hat - y).abs().mean().item() / 6 + 1e-3


def test_masked_loss_is_sum_of_per_output_mae_over_six(malinois5):
    rng = np.random.default_rng(2)
    y_hat = torch.tensor(rng.normal(size=(10, 5)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(10, 5)))
    mask = torch.tensor(rng.random((10, 5)) < 0.6)
    mask[:, 3] = False  # output 3 has no measured row in this batch
    mask[0, :3] = True
    y[~mask] = float("nan")
    loss = malinois5.regression_loss(y_hat, y, mask)
    expected = sum((y_hat[mask[:, t], t] - y[mask[:, t], t]).abs().mean().item() / 6
                   for t in range(5) if mask[:, t].any())
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    loss.backward()
    assert torch.isfinite(y_hat.grad).all()
    assert (y_hat.grad[:, 3] == 0).all()


def test_masked_loss_without_any_measured_row_is_zero(malinois5):
    y_hat = torch.randn(4, 5, requires_grad=True)
    loss = malinois5.regression_loss(y_hat, torch.full((4, 5), float("nan")), torch.zeros(4, 5, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert (y_hat.grad == 0).all()
