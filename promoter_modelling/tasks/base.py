"""Shared base for task data modules: cache manifest, datasets, samplers, loaders, head spec.

A task subclass implements `raw_files()` (what to download), `build_cache()` (raw files ->
cached arrays) and `load_datasets()` (cached arrays -> train/val/test datasets), and sets
`head` (its HeadSpec). It declares the constructor options a run may set (`OPTIONS`), the input
kinds it can serve (`INPUT_KINDS`) and, in `run_options`, the options the training scripts set
for a model (the published preprocessing per model). The base decides when a cache is stale (input files or parameters
changed), builds it atomically, and serves batches as dicts {"x", "y"[, "mask"]}.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from promoter_modelling import download, locks
from promoter_modelling.heads import HeadSpec
from promoter_modelling.io_utils import fingerprint, save_json

if TYPE_CHECKING:
    from promoter_modelling.recipe import InputRecipe
    from promoter_modelling.run_config import DataOptions

MANIFEST = "cache_manifest.json"


@dataclass(frozen=True)
class LoaderSettings:
    """How every task serves batches: batch size, worker processes, shuffling seed, and whether
    val/test sets are cut to their first 10 rows (tasks where the published code did so)."""

    batch_size: int = 96
    num_workers: int = 0
    seed: int = 0
    shrink_test_set: bool = False


@dataclass(frozen=True)
class TaskContext:
    """What a run tells its tasks: the model (name and input recipe), the data switches, the
    fluorescence split seed of this seed's run (None: the published seed 97) and whether the
    phase is a pretraining phase (its tasks are not the ones evaluated) or a simple-regression
    phase (fixed backbone features + Lasso)."""

    model_name: str
    recipe: InputRecipe
    data: DataOptions
    split_seed: int | None = None
    pretraining: bool = False
    simple_regression: bool = False


@dataclass(frozen=True)
class RawFile:
    """A raw input: its file name in the task's raw directory and where it comes from."""

    filename: str
    url: str | None = None
    gdrive_id: str | None = None
    gunzip: bool = False
    manual: str | None = None  # instructions when the file cannot be downloaded automatically


class BatchedDataset(Dataset):
    """A dataset that builds whole batches in `_batch(int64 index array)`; one item is a batch
    of one. Subclasses define `__len__` and `_batch`."""

    def _batch(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self._batch(np.array([i])).items()}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return self._batch(np.asarray(indices, dtype=np.int64))


class ArrayDataset(BatchedDataset):
    """Rows of in-memory or memory-mapped arrays, fetched a whole batch at a time."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> None:
        if len(x) != len(y):
            raise ValueError(f"inputs ({len(x)}) and targets ({len(y)}) differ in length")
        self.x, self.y, self.mask = x, y, mask

    def __len__(self) -> int:
        return len(self.y)

    def _batch(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        batch = {"x": torch.from_numpy(np.ascontiguousarray(self.x[index])),
                 "y": torch.from_numpy(np.ascontiguousarray(self.y[index]))}
        if self.mask is not None:
            batch["mask"] = torch.from_numpy(np.ascontiguousarray(self.mask[index]))
        return batch


def collate_batch(batch):
    """Collate for datasets that already return whole batches (BatchedDataset.__getitems__)."""
    if isinstance(batch, dict):
        return batch
    return torch.utils.data.default_collate(batch)


class EpochSeededSampler(Sampler[int]):
    """Random order that depends only on (seed, epoch): a resumed run sees the same batches."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


class TaskDataModule(L.LightningDataModule):
    """Base of every task. Subclasses set `task_name` (registry name) and `head` in __init__."""

    task_name: str = ""
    raw_dirname: str = ""  # directory under root_data_dir holding raw files
    cache_dirname: str = ""  # directory under root_data_dir holding derived caches
    num_windows: int = 1  # >1: val/test inputs carry several windows, predictions are averaged
    OPTIONS: ClassVar[tuple[str, ...]] = ()  # constructor options beyond the loader settings
    INPUT_KINDS: ClassVar[tuple[str, ...]] = ("onehot",)  # model input kinds the task can serve
    # a target assay: its test predictions are scored per output after training (needs split_table)
    reports_test_metrics: ClassVar[bool] = False
    SHRINKS_TEST_SET: ClassVar[bool] = True  # --shrink_test_set cuts its val/test sets to 10 rows

    @classmethod
    def shrinks_test_set(cls, pretraining: bool) -> bool:
        """Whether --shrink_test_set cuts this task's val/test sets in a (pretraining) phase."""
        return cls.SHRINKS_TEST_SET

    @classmethod
    def run_options(cls, context: TaskContext) -> Mapping[str, object]:
        """Options the training scripts set for this task and model (a subset of OPTIONS)."""
        return {}

    def __init__(self, data_dir: str, batch_size: int = 96, num_workers: int = 0, seed: int = 0,
                 shrink_test_set: bool = False) -> None:
        super().__init__()
        self.data_dir = os.path.abspath(data_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.shrink_test_set = shrink_test_set
        self.head: HeadSpec | None = None
        self.options: dict[str, object] = {}  # the options it was built with (set by the registry)
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self._ready = False

    # --- locations -------------------------------------------------------------------------
    @property
    def raw_dir(self) -> str:
        return os.path.join(self.data_dir, self.raw_dirname or self.task_name)

    @property
    def cache_dir(self) -> str:
        return os.path.join(self.data_dir, self.cache_dirname or self.raw_dirname or self.task_name)

    @property
    def common_dir(self) -> str:
        return os.path.join(self.data_dir, "common")

    # --- to implement ---------------------------------------------------------------------
    def raw_files(self) -> list[RawFile]:
        """Raw inputs that must exist under raw_dir (downloaded if missing)."""
        return []

    def cache_params(self) -> dict:
        """Parameters that change the cache contents (part of the cache fingerprint)."""
        return {}

    def input_paths(self) -> list[str]:
        """Files whose change invalidates the cache (default: the raw files)."""
        return [os.path.join(self.raw_dir, f.filename) for f in self.raw_files()]

    def build_cache(self) -> None:
        """Turn raw files into cached arrays under cache_dir (write atomically)."""
        raise NotImplementedError

    def load_datasets(self) -> None:
        """Set train_dataset, val_dataset and test_dataset from the cache."""
        raise NotImplementedError

    # --- shared machinery -------------------------------------------------------------------
    def download(self) -> None:
        """Fetch every missing raw file, or fail with instructions for a manual download."""
        for raw in self.raw_files():
            dest = os.path.join(self.raw_dir, raw.filename)
            if os.path.exists(dest):
                continue
            if raw.manual:
                from promoter_modelling.errors import InputError

                raise InputError(f"{dest} not found: {raw.manual}")
            download.fetch(dest, url=raw.url, gdrive_id=raw.gdrive_id, gunzip=raw.gunzip)

    def _manifest_path(self) -> str:
        return os.path.join(self.cache_dir, MANIFEST)

    def cache_is_fresh(self) -> bool:
        path = self._manifest_path()
        if not os.path.exists(path):
            return False
        try:
            with open(path, encoding="utf-8") as handle:
                stored = json.load(handle).get("fingerprint")
        except (OSError, json.JSONDecodeError):
            return False
        return stored == self.data_fingerprint()

    def data_fingerprint(self) -> str:
        """Fingerprint of the raw inputs (size, mtime) and preprocessing parameters: what a cache
        and a trained run were built from."""
        return fingerprint([p for p in self.input_paths() if os.path.exists(p)], self.cache_params())

    def prepare(self) -> None:
        """Download, (re)build the cache when stale, and load the datasets. Idempotent."""
        if self._ready:
            return
        os.makedirs(self.cache_dir, exist_ok=True)
        # one process downloads and builds a cache at a time; the others wait, then reuse it
        with locks.exclusive(os.path.join(self.cache_dir, ".build.lock"), f"the cache of {self.task_name}",
                             wait=True):
            self.download()
            if not self.cache_is_fresh():
                self.build_cache()
                save_json({"fingerprint": self.data_fingerprint(), "params": self.cache_params()},
                          self._manifest_path())
        self.load_datasets()
        if self.shrink_test_set:
            self.val_dataset = _first_rows(self.val_dataset, 10)
            self.test_dataset = _first_rows(self.test_dataset, 10)
        self._ready = True

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def input_length(self) -> int | None:
        """The length of every one-hot input sequence of the task (None: lengths vary, or the
        inputs are not sequences)."""
        self.prepare()
        x = getattr(self.train_dataset, "x", None)
        return int(x.shape[1]) if isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype == np.uint8 else None

    @property
    def collate_fn(self) -> Callable:
        return collate_batch

    def _loader(self, dataset: Dataset, train: bool) -> DataLoader:
        sampler = EpochSeededSampler(len(dataset), self.seed) if train else None
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        self.prepare()
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        self.prepare()
        return self._loader(self.val_dataset, train=False)

    def test_dataloader(self) -> DataLoader:
        self.prepare()
        return self._loader(self.test_dataset, train=False)


def _first_rows(dataset: Dataset, n: int) -> Dataset:
    return torch.utils.data.Subset(dataset, list(range(min(n, len(dataset))))) if not isinstance(
        dataset, ArrayDataset) else ArrayDataset(dataset.x[:n], dataset.y[:n],
                                                 None if dataset.mask is None else dataset.mask[:n])
