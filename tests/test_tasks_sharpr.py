"""Sharpr_MPRA: HDF5 -> cached codes, output names, shuffled training, mean over *_avg outputs."""

from __future__ import annotations

import math

import h5py
import lightning
import numpy as np
import pytest
import torch

from promoter_modelling.errors import InputError
from promoter_modelling.fixtures import sharpr as sharpr_fixture
from promoter_modelling.tasks import sharpr
from promoter_modelling.tasks.base import LoaderSettings
from promoter_modelling.tasks.registry import build_task


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("sharpr"))
    sharpr_fixture.generate(root, np.random.default_rng(0), num_train=128, num_val=32, num_test=32)
    return root


@pytest.fixture(scope="module")
def task(data_dir):
    built = build_task("Sharpr_MPRA", data_dir, LoaderSettings(batch_size=64))
    built.prepare()
    return built


def test_one_hot_to_codes_by_hand():
    one_hot = np.array([[[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0, 1, 0, 0],
                         [0, 0, 1, 0]]], dtype=np.float32)
    assert sharpr.one_hot_to_codes(one_hot).tolist() == [[0, 3, 5, 4, 1, 2]]  # all-zero stays zero (PAD)
    assert sharpr.one_hot_to_codes(one_hot.astype(bool)).tolist() == [[0, 3, 5, 4, 1, 2]]


def test_output_names_and_head(task):
    names = task.head.output_names
    assert len(names) == 12 and len(set(names)) == 12
    assert names[3:6] == ["k562_sv40p_rep1", "k562_sv40p_rep2", "k562_sv40p_avg"]
    assert task.head.mean_outputs == ["k562_minp_avg", "k562_sv40p_avg", "hepg2_minp_avg", "hepg2_sv40p_avg"]
    assert task.head.name == "Sharpr_MPRA"


def test_cached_codes_match_hdf5(task, data_dir):
    for split, name in sharpr.FILES.items():
        with h5py.File(f"{data_dir}/Sharpr_MPRA/{name}", "r") as handle:
            x, y = handle["X"]["sequence"][:], handle["Y"]["output"][:]
        dataset = getattr(task, f"{split}_dataset")
        assert isinstance(dataset.x, np.memmap) and dataset.x.dtype == np.uint8
        np.testing.assert_array_equal(dataset.x, x.argmax(axis=-1))
        np.testing.assert_allclose(dataset.y, y.astype(np.float32))
    batch = next(iter(task.val_dataloader()))
    assert batch["x"].shape == (32, 145) and batch["x"].dtype == torch.uint8
    assert batch["y"].shape == (32, 12) and batch["y"].dtype == torch.float32


def test_training_order_is_shuffled_and_val_is_not(task):
    first = next(iter(task.train_dataloader()))["y"].numpy()
    assert not np.allclose(first, np.asarray(task.train_dataset.y[:64]))
    val = next(iter(task.val_dataloader()))["y"].numpy()
    np.testing.assert_allclose(val, np.asarray(task.val_dataset.y[:32]))


def test_bad_hdf5_shape_is_reported(tmp_path):
    path = tmp_path / "train.hdf5"
    with h5py.File(path, "w") as handle:
        handle.create_group("X").create_dataset("sequence", data=np.zeros((4, 145, 5)))
        handle.create_group("Y").create_dataset("output", data=np.zeros((4, 12)))
    with pytest.raises(InputError, match="X/sequence has shape"):
        sharpr.convert_hdf5(str(path), str(tmp_path / "a.npy"), str(tmp_path / "b.npy"))


def test_tiny_model_trains_one_epoch(task):
    from promoter_modelling.lightning_module import MultiTaskDataModule, MultiTaskModule

    model = MultiTaskModule(heads=[task.head.to_dict()], model_name="MTLucifer", model_size="tiny", lr=1e-3)
    lightning.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, num_sanity_val_steps=0).fit(model, MultiTaskDataModule([task]))
    metrics = model.last_metrics["val"]
    assert math.isfinite(metrics["val_Sharpr_MPRA_avg_epoch_loss"])
    for met in ("MSE", "MAE", "R2", "PearsonR", "SpearmanR"):
        assert f"val_Sharpr_MPRA_k562_sv40p_rep2_{met}" in metrics
        averaged = np.mean([metrics[f"val_Sharpr_MPRA_{o}_{met}"] for o in sharpr.MEAN_OUTPUTS])
        assert metrics[f"val_Sharpr_MPRA_mean_{met}"] == pytest.approx(averaged)
    assert math.isfinite(metrics["val_Sharpr_MPRA_mean_MSE"])
