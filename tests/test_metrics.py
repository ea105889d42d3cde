import numpy as np
import pytest
import scipy.stats
import torch
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, precision_score, r2_score, recall_score

from promoter_modelling.heads import HeadSpec, head_loss
from promoter_modelling.metrics import HeadMetrics, metric_names


def test_regression_metrics_match_scipy_and_sklearn_over_several_batches():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(300, 3)).astype(np.float32)
    pred = (y + rng.normal(scale=0.8, size=y.shape)).astype(np.float32)
    spec = HeadSpec("Fluorescence", ["JURKAT", "K562", "THP1"])
    metrics = HeadMetrics(spec)
    for start in range(0, 300, 64):
        sl = slice(start, start + 64)
        metrics.update(torch.from_numpy(pred[sl]), torch.from_numpy(y[sl]), None, torch.tensor(1.0))
    got = metrics.compute("test")
    assert set(got) == set(metric_names(spec, "test"))
    for i, cell in enumerate(spec.output_names):
        yi, pi = y[:, i], pred[:, i]
        assert got[f"test_Fluorescence_{cell}_PearsonR"] == pytest.approx(scipy.stats.pearsonr(yi, pi)[0], abs=1e-5)
        assert got[f"test_Fluorescence_{cell}_SpearmanR"] == pytest.approx(scipy.stats.spearmanr(yi, pi)[0], abs=1e-5)
        assert got[f"test_Fluorescence_{cell}_R2"] == pytest.approx(r2_score(y[:, i], pred[:, i]), abs=1e-5)
        assert got[f"test_Fluorescence_{cell}_MSE"] == pytest.approx(np.mean((y[:, i] - pred[:, i]) ** 2), rel=1e-5)
        assert got[f"test_Fluorescence_{cell}_MAE"] == pytest.approx(mean_absolute_error(y[:, i], pred[:, i]), rel=1e-5)
    mean_r = np.mean([scipy.stats.pearsonr(y[:, i], pred[:, i])[0] for i in range(3)])
    assert got["test_Fluorescence_mean_PearsonR"] == pytest.approx(mean_r, abs=1e-5)
    assert got["test_Fluorescence_avg_epoch_loss"] == pytest.approx(1.0)


def test_mean_outputs_restrict_the_mean():
    spec = HeadSpec("Sharpr_MPRA", ["a_rep1", "a_avg", "b_avg"], mean_outputs=["a_avg", "b_avg"])
    m = HeadMetrics(spec)
    y = torch.tensor([[0.0, 1.0, 2.0], [1.0, 2.0, 0.0], [2.0, 0.0, 1.0]])
    m.update(y * 2, y, None, torch.tensor(0.0))
    got = m.compute("val")
    assert got["val_Sharpr_MPRA_mean_MSE"] == pytest.approx(np.mean([got["val_Sharpr_MPRA_a_avg_MSE"],
                                                                      got["val_Sharpr_MPRA_b_avg_MSE"]]))


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=(200, 3))
    logits = rng.normal(size=(200, 3)) + (y - 0.5)
    spec = HeadSpec("Fluorescence_classification", ["JURKAT", "K562", "THP1"], kind="binary")
    m = HeadMetrics(spec)
    m.update(torch.tensor(logits, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), None, torch.tensor(0.5))
    got = m.compute("val")
    pred = (logits > 0).astype(int)
    for i, cell in enumerate(spec.output_names):
        key = f"val_Fluorescence_classification_{cell}"
        yi, pi = y[:, i], pred[:, i]
        assert got[f"{key}_Accuracy"] == pytest.approx(accuracy_score(yi, pi))
        assert got[f"{key}_Precision"] == pytest.approx(precision_score(yi, pi))
        assert got[f"{key}_Recall"] == pytest.approx(recall_score(yi, pi))
        assert got[f"{key}_F1"] == pytest.approx(f1_score(yi, pi))


def test_masked_multilabel_ignores_masked_labels_in_loss_and_metrics():
    spec = HeadSpec("ENCODETFChIPSeq", ["a", "b", "c"], kind="masked_multilabel")
    logits = torch.tensor([[5.0, -5.0, 5.0], [-5.0, 5.0, 5.0]])
    y = torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    mask = y >= 0
    loss = head_loss(spec, logits, y, mask)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], y[mask])
    assert loss.item() == pytest.approx(expected.item())
    m = HeadMetrics(spec)
    m.update(logits, y, mask, loss)
    got = m.compute("val")
    assert got["val_ENCODETFChIPSeq_Accuracy"] == pytest.approx(3 / 4)  # the masked wrong calls do not count


def test_grouped_multiclass_loss_is_a_sum_of_cross_entropies():
    spec = HeadSpec("SuRE_x", ["K562_bin", "HepG2_bin"], kind="grouped_multiclass", num_classes=5)
    logits = torch.randn(4, 10)
    y = torch.tensor([[0, 4], [1, 3], [2, 2], [3, 1]], dtype=torch.float32)
    expected = (torch.nn.functional.cross_entropy(logits[:, :5], y[:, 0].long())
                + torch.nn.functional.cross_entropy(logits[:, 5:], y[:, 1].long()))
    assert head_loss(spec, logits, y).item() == pytest.approx(expected.item())
    assert spec.num_logits == 10
