"""The multi-task Lightning module: one backbone, one linear head per task.

Single-task runs use the plain task loss (`single_task_loss="published"`: the published fixed
log-variance s = 1). Multi-task runs weight each task by a learned log-variance s (Kendall et
al.): loss = exp(-s) / (1 + is_regression) * L + s / 2, as published. Hyperparameters, including
every head's spec, and the input recipe are saved in checkpoints, so a checkpoint alone rebuilds
the model and reads sequences as training did (`checkpoints.load_model`).
"""

from __future__ import annotations

from dataclasses import replace

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch import nn

from promoter_modelling.backbones.registry import backbone_parameters, build_backbone
from promoter_modelling.errors import InputError
from promoter_modelling.heads import HeadSpec, head_loss
from promoter_modelling.metrics import HeadMetrics
from promoter_modelling.recipe import InputRecipe
from promoter_modelling.sequence import codes_to_one_hot

FREEZE_MODES = (None, "all", "published")


class NonFiniteLossError(InputError):
    """Training produced an infinite or NaN loss (usually bad targets); the run stops unfinished."""


SINGLE_TASK_LOSSES = ("plain", "published")
PUBLISHED_SINGLE_TASK_LOG_VAR = 1.0
MALINOIS_BETAS = (0.8661062881299633, 0.879223105336538)
MALINOIS_RESTART_STEPS = 4096  # CosineAnnealingWarmRestarts T_0, in batches


class MultiTaskModule(L.LightningModule):
    """Backbone + per-task heads, uncertainty-weighted losses and published metric names."""

    def __init__(self, heads: list[dict], model_name: str = "MTLucifer", model_size: str = "full",
                 backbone_kwargs: dict | None = None, lr: float = 1e-5, weight_decay: float = 1e-4,
                 loss_weighting: str | None = None, freeze_backbone: str | None = None,
                 scheduler_interval: str = "step", seed: int = 0, single_task_loss: str = "plain",
                 architecture_only: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["architecture_only"])
        if freeze_backbone not in FREEZE_MODES:
            raise ValueError(f"freeze_backbone must be one of {FREEZE_MODES}")
        if single_task_loss not in SINGLE_TASK_LOSSES:
            raise ValueError(f"single_task_loss must be one of {SINGLE_TASK_LOSSES}")
        # architecture_only: the weights come from a checkpoint next, so a backbone that would read
        # pretrained weights (Enformer: `pretrained`) is only built
        kwargs = dict(backbone_kwargs or {})
        if architecture_only and "pretrained" in backbone_parameters(model_name):
            kwargs["pretrained"] = False
        self.backbone = build_backbone(model_name, model_size, **kwargs)
        self.head_specs = [HeadSpec.from_dict(h) if isinstance(h, dict) else h for h in heads]
        names = [s.name for s in self.head_specs]
        if len(set(names)) != len(names):
            raise ValueError(f"head names must be unique, got {names}")
        if self.backbone.embed_dims is None:
            raise InputError(f"{model_name} is a fixed feature extractor without a trainable head: use it with "
                             "--modelling_strategy single_task_simple_regression or pretrain+simple_regression")
        if not self.backbone.multi_task and len(self.head_specs) > 1:
            raise InputError(f"{model_name} predicts the outputs of one task (one branch per output), but this run has "
                             f"{len(self.head_specs)}: {', '.join(names)}; train it on a single task")
        self.heads = nn.ModuleDict({s.name: self.backbone.make_head(s.num_logits) for s in self.head_specs})
        self.weighted = (loss_weighting or ("auto" if len(self.head_specs) > 1 else "none")) == "auto"
        self.loss_log_vars = nn.ParameterDict(
            {s.name: nn.Parameter(torch.zeros(1)) for s in self.head_specs} if self.weighted else {})
        self.metrics = nn.ModuleDict({split: nn.ModuleDict({s.name: HeadMetrics(s) for s in self.head_specs})
                                      for split in ("val", "test")})
        self.last_metrics: dict[str, dict[str, float]] = {}
        # Training sequence length per head (one-hot inputs), saved in checkpoints (in the input
        # recipe) so `predict` can check its inputs.
        self.sequence_lengths: dict[str, int] = {}
        # How sequences become this model's inputs; the run sets it, checkpoints carry it.
        # (checkpoints without a recipe: token models read the tokenizer their weights came from)
        tokenizer = (backbone_kwargs or {}).get("dnabert_path") if self.backbone.input_kind == "tokens" else None
        self.input_recipe = InputRecipe(self.backbone.input_kind, tokenizer=tokenizer)
        self.apply_freeze()

    # --- model -------------------------------------------------------------------------------
    @property
    def input_kind(self) -> str:
        return self.backbone.input_kind

    def head_width(self, name: str) -> int:
        """Number of values head `name` returns per example."""
        return next(s.num_logits for s in self.head_specs if s.name == name)

    def set_input_recipe(self, recipe: InputRecipe) -> None:
        """Record how the training inputs were made (saved with every checkpoint)."""
        if recipe.kind != self.input_kind:
            raise ValueError(f"a {recipe.kind} input recipe cannot feed a backbone reading {self.input_kind} inputs")
        self.input_recipe = recipe

    def apply_freeze(self) -> None:
        mode = self.hparams.freeze_backbone
        for name, param in self.backbone.named_parameters():
            if mode == "all" or (mode == "published" and name.startswith("promoter_")):
                param.requires_grad_(False)
        if mode == "all":
            self.backbone.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.hparams.freeze_backbone == "all":
            self.backbone.eval()  # a frozen backbone is a fixed feature extractor: no dropout
        return self

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features of a batch of inputs (uint8 codes are expanded to one-hot here)."""
        if self.input_kind == "onehot" and x.dtype == torch.uint8:
            x = codes_to_one_hot(x)
        return self.backbone(x)

    def forward(self, x: torch.Tensor, heads: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Head outputs (logits for classifiers). Multi-window inputs (B, W, L) are averaged over W."""
        windows = None
        if x.dtype == torch.uint8 and x.dim() == 3:
            windows = x.shape[1]
            x = x.reshape(-1, x.shape[-1])
        features = self.embed(x)
        out = {}
        for name in heads or list(self.heads):
            y = self.heads[name](features)
            out[name] = y.reshape(-1, windows, y.shape[-1]).mean(dim=1) if windows else y
        return out

    # --- loss ----------------------------------------------------------------------------------
    def task_loss(self, spec: HeadSpec, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weighted loss, raw loss, predictions) of one head on its batch."""
        y_hat = self(batch["x"], heads=[spec.name])[spec.name]
        raw = self.backbone.regression_loss(y_hat, batch["y"], batch.get("mask")) if spec.is_regression else None
        if raw is None:
            raw = head_loss(spec, y_hat, batch["y"], batch.get("mask"))
        if not self.weighted:
            if self.hparams.single_task_loss == "published":
                s = torch.tensor(PUBLISHED_SINGLE_TASK_LOG_VAR, device=raw.device, dtype=raw.dtype)
                return torch.exp(-s) / (1.0 + float(spec.is_regression)) * raw + 0.5 * s, raw, y_hat
            return raw, raw, y_hat
        s = self.loss_log_vars[spec.name].squeeze()
        weighted = torch.exp(-s) / (1.0 + float(spec.is_regression)) * raw + 0.5 * s
        return weighted, raw, y_hat

    def training_step(self, batch, batch_idx):
        if isinstance(batch, (tuple, list)) and len(batch) == 3 and isinstance(batch[0], dict):
            batch = batch[0]  # CombinedLoader in Lightning's iteration yields (batch, idx, dl_idx)
        total = 0.0
        for spec in self.head_specs:
            if spec.name not in batch:
                continue
            part = batch[spec.name]
            if len(part["y"]) < self.backbone.min_train_batch_size:
                continue  # e.g. a last batch of one row: Malinois' BatchNorm on features cannot train on it
            if spec.name not in self.sequence_lengths and self.input_kind == "onehot":
                self.sequence_lengths[spec.name] = int(part["x"].shape[-1])
            loss, raw, _ = self.task_loss(spec, part)
            if not torch.isfinite(raw):
                raise NonFiniteLossError(f"the {spec.name} training loss became {float(raw)} at epoch "
                                         f"{self.current_epoch}, batch {batch_idx}: check the targets of that task "
                                         "(and the learning rate); the run was not marked finished")
            self.log(f"{spec.name}_train_loss", raw, on_step=True, on_epoch=True, batch_size=len(part["y"]))
            total = total + loss
        if not torch.is_tensor(total):
            return None  # nothing to learn from in this batch: Lightning skips the step
        self.log("train_loss", total, on_step=True, on_epoch=True, prog_bar=True)
        return total

    def _eval_step(self, split: str, batch: dict, dataloader_idx: int) -> None:
        spec = self.head_specs[dataloader_idx]
        loss, raw, y_hat = self.task_loss(spec, batch)
        self.metrics[split][spec.name].update(y_hat, batch["y"], batch.get("mask"), loss)

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._eval_step("val", batch, dataloader_idx)

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._eval_step("test", batch, dataloader_idx)

    def _epoch_end(self, split: str) -> None:
        values: dict[str, float] = {}
        overall = 0.0
        for spec in self.head_specs:
            metric = self.metrics[split][spec.name]
            if metric.avg_loss.update_count == 0:
                continue
            head_values = metric.compute(split)
            metric.reset()
            values.update(head_values)
            overall += head_values[f"{split}_{spec.name}_avg_epoch_loss"]
        values[f"overall_{split}_loss"] = overall
        self.last_metrics[split] = values
        if self.trainer is not None and not self.trainer.sanity_checking:
            key = next((k for k in values if k.endswith("_mean_SpearmanR") or k.endswith("_mean_Accuracy")), None)
            self.log_dict({k: v for k, v in values.items() if k != key}, prog_bar=False)
            if key:
                self.log(key, values[key], prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        recipe = replace(self.input_recipe, sequence_lengths={**self.input_recipe.sequence_lengths,
                                                              **self.sequence_lengths})
        checkpoint["input_recipe"] = recipe.to_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        raw = checkpoint.get("input_recipe")
        if raw:
            self.set_input_recipe(InputRecipe.from_dict(raw))
        lengths = (raw or {}).get("sequence_lengths") or checkpoint.get("sequence_lengths") or {}
        self.sequence_lengths = {**self.sequence_lengths, **{k: int(v) for k, v in lengths.items()}}

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Randomness (dropout) depends only on (seed, epoch, batch, rank), so a run resumed from
        # its last checkpoint reproduces an uninterrupted one. (Seeding at epoch start is not
        # enough: a resumed run draws from the global generator in a different order before its
        # first batch.)
        epoch_seed = self.hparams.seed * 10_007 + self.current_epoch
        torch.manual_seed((epoch_seed * 1_000_003 + batch_idx) * 1_024 + self.global_rank)

    # --- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        lr, wd = self.hparams.lr, self.hparams.weight_decay
        if self.backbone.optimizer_recipe == "onecycle":
            optimizer = torch.optim.AdamW(params, lr=lr / 25, weight_decay=wd)
            interval = self.hparams.scheduler_interval
            if interval == "step":
                total = int(self.trainer.estimated_stepping_batches)
                scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(total, 2),
                                                                pct_start=0.3, div_factor=25, three_phase=True)
            else:  # published: built per batch count but stepped once per epoch
                steps = max(1, int(self.trainer.num_training_batches))
                scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, steps_per_epoch=steps,
                                                                epochs=max(1, self.trainer.max_epochs), pct_start=0.3,
                                                                div_factor=25, three_phase=True)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}
        if self.backbone.optimizer_recipe == "adam":  # MPRAnn, as published: no weight decay, no scheduler
            return torch.optim.Adam(params, lr=lr)
        if self.backbone.optimizer_recipe == "malinois":  # boda2's Malinois recipe (L2 weight decay)
            optimizer = torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=MALINOIS_BETAS, amsgrad=True)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=MALINOIS_RESTART_STEPS)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


class MultiTaskDataModule(L.LightningDataModule):
    """Combines task data modules: one combined train loader, one val/test loader per task."""

    def __init__(self, tasks: list, train_mode: str = "min_size") -> None:
        super().__init__()
        if train_mode not in ("min_size", "max_size_cycle", "max_size"):
            raise ValueError(f"train_mode must be min_size, max_size_cycle or max_size, got {train_mode!r}")
        self.tasks = tasks
        self.train_mode = train_mode

    def setup(self, stage: str | None = None) -> None:
        for task in self.tasks:
            task.prepare()

    def train_dataloader(self):
        return CombinedLoader({t.head.name: self._shard(t.train_dataloader(), train=True) for t in self.tasks},
                              mode=self.train_mode)

    def val_dataloader(self):
        return [self._shard(t.val_dataloader()) for t in self.tasks]

    def test_dataloader(self):
        return [self._shard(t.test_dataloader()) for t in self.tasks]

    def _shard(self, loader, train: bool = False):
        """With several processes, give each its share of a loader. Training: every world_size-th
        row of the task's own (seeded) order, so the processes' batches together are the batch one
        process would take (Lightning's default wrapper would reshuffle). Evaluation: disjoint
        shares without the repeated rows Lightning's default sampler adds, so the synchronised
        metrics equal one process's."""
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1 or len(loader.dataset) < trainer.world_size:
            return loader  # (a set smaller than the number of processes: left to Lightning)
        if isinstance(loader.sampler, torch.utils.data.RandomSampler):
            return loader  # its order differs per process: Lightning's DistributedSampler shuffles instead
        from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
        from torch.utils.data import DataLoader

        if train:
            sampler = ShardedSampler(loader.sampler, num_replicas=trainer.world_size, rank=trainer.global_rank)
        else:
            sampler = UnrepeatedDistributedSampler(loader.dataset, num_replicas=trainer.world_size,
                                                   rank=trainer.global_rank, shuffle=False)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, drop_last=loader.drop_last,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                          persistent_workers=loader.persistent_workers)


class ShardedSampler(torch.utils.data.DistributedSampler):
    """One process's share of another sampler's order: positions rank, rank + world_size, ...
    (padded with the first positions to a multiple of world_size, as DistributedSampler does)."""

    def __init__(self, sampler, num_replicas: int, rank: int) -> None:
        super().__init__(sampler, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if callable(getattr(self.sampler, "set_epoch", None)):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        order = list(self.sampler)
        while len(order) < self.total_size:
            order += order[: self.total_size - len(order)]
        return iter(order[self.rank:self.total_size:self.num_replicas])


