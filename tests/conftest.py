"""Shared test fixtures: small generated data sets and quiet, offline logging."""

from __future__ import annotations

import os
import re

import pytest

from promoter_modelling.errors import InputError

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two test processes on two cores: one compute thread each avoids oversubscription
    import torch

    torch.set_num_threads(1)

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("PYTHONHASHSEED", "0")


def read_fasta_text(path: str) -> dict[str, str]:
    """Independent FASTA reader: chromosome (first header word) -> sequence as written (case kept)."""
    seqs: dict[str, list[str]] = {}
    name = None
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line.startswith(">"):
                name = line[1:].split()[0]
                seqs[name] = []
            elif line:
                seqs[name].append(line)
    return {k: "".join(v) for k, v in seqs.items()}


@pytest.fixture
def single_thread():
    """One intra-op thread: these small batches and convolutions gain nothing from more, and on a
    busy machine OpenMP thread synchronisation dominates."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def fluorescence_data_dir(tmp_path_factory) -> str:
    """A data root with demo FluorescenceData raw files (600 promoters)."""
    from promoter_modelling.demo_data import generate

    root = str(tmp_path_factory.mktemp("fluo_data"))
    generate(root, ["FluorescenceData"], seed=0, num_sequences=600)
    return root


def train_fluorescence_seeds(root, data_dir: str, model_flags: list[str], seeds: int = 2) -> tuple[str, list[str]]:
    """Train `seeds` seeds of a model for one epoch on the FluorescenceData of `data_dir`, with
    results under `root`. Returns the config path and the seeds' run folders
    (`saved_models/<run>_seed_k`), in seed order."""
    import glob
    import json

    from promoter_modelling import cli
    from promoter_modelling.strategies import run_strategy

    config = os.path.join(str(root), "config.json")
    with open(config, "w", encoding="utf-8") as handle:
        json.dump({"root_dir": os.path.join(str(root), "results"), "root_data_dir": data_dir}, handle)
    run_strategy(cli.parse_train_args([
        "--config_path", config, "--modelling_strategy", "single_task", "--single_task", "FluorescenceData",
        "--max_epochs", "1", "--batch_size", "64", "--lr", "1e-3", "--num_random_seeds", str(seeds),
        "--loggers", "csv", "--accelerator", "cpu", *model_flags]))
    runs = sorted(glob.glob(os.path.join(str(root), "results", "saved_models", "*_seed_*")))
    assert len(runs) == seeds, runs
    return config, runs


def raises(message: str, function, *args, **kwargs) -> None:
    """Call `function` and check it raises InputError with exactly `message` ('...' matches any text)."""
    with pytest.raises(InputError) as info:
        function(*args, **kwargs)
    pattern = ".*".join(re.escape(part) for part in message.split("..."))
    assert re.fullmatch(pattern, str(info.value), flags=re.S), str(info.value)
    assert "\n" not in str(info.value)
