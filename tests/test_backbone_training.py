"""LegNet and PureCNN at size `small` learn the demo data's planted motif grammar on a CPU."""

from __future__ import annotations

import time

import lightning as L
import pytest
import torch

from promoter_modelling.demo_data import generate
from promoter_modelling.lightning_module import MultiTaskDataModule, MultiTaskModule
from promoter_modelling.tasks.base import LoaderSettings
from promoter_modelling.tasks.registry import build_task


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("demo_training"))
    generate(root, ["FluorescenceData"], seed=0, num_sequences=2000)
    return root


# (model, epochs, peak learning rate): LegNet uses AdamW + OneCycleLR, PureCNN plain AdamW.
# PureCNN's position-specific dense layer needs more epochs (about a minute on 2 busy cores).
CASES = [pytest.param("LegNet", 3, 1e-2, id="LegNet"),
         pytest.param("PureCNN", 10, 3e-4, id="PureCNN", marks=pytest.mark.slow)]


@pytest.mark.parametrize("model_name,epochs,lr", CASES)
def test_small_backbone_learns_demo_data(demo_root, single_thread, model_name, epochs, lr):
    torch.manual_seed(0)
    task = build_task("FluorescenceData", demo_root, LoaderSettings(batch_size=32))
    model = MultiTaskModule(heads=[task.head.to_dict()], model_name=model_name, model_size="small", lr=lr)
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    start = time.perf_counter()
    data = MultiTaskDataModule([task])
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    trainer.test(model, datamodule=data, verbose=False)
    pearson = model.last_metrics["test"]["test_Fluorescence_mean_PearsonR"]
    print(f"{model_name} small: test Pearson r {pearson:.3f} after {epochs} epochs, {seconds:.1f} s of training")
    assert pearson > 0.5
    assert seconds < 150

