"""Shared test fixtures: small generated data sets and quiet, offline logging."""

from __future__ import annotations

import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two test processes on two cores: one compute thread each avoids oversubscription
    import torch

    torch.set_num_threads(1)

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.fixture(scope="session")
def fluorescence_data_dir(tmp_path_factory) -> str:
    """A data root with demo FluorescenceData raw files (600 promoters)."""
    from promoter_modelling.demo_data import generate

    root = str(tmp_path_factory.mktemp("fluo_data"))
    generate(root, ["FluorescenceData"], seed=0, num_sequences=600)
    return root
