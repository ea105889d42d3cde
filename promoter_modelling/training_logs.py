"""Training curves: a CSV log that keeps its history across resumption, and one Weights & Biases
run per trained model."""

from __future__ import annotations

import csv
import os
import warnings

from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from promoter_modelling.run_config import LoggingOptions


def _value(text: str) -> float | int | None:
    if text == "":
        return None
    number = float(text)
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


class ResumedCSVLogger(CSVLogger):
    """`logs/metrics.csv` that keeps the rows of the epochs a resumed run already completed.

    Lightning's CSV writer starts a new file on resumption; this one first reads the earlier
    rows of epochs <= `completed_epoch` (the epoch of the checkpoint resumed from; rows of the
    interrupted epoch are logged again) and writes them ahead of the new ones. The earlier file
    is kept as `metrics.before_resume.csv` until the first complete write."""

    def __init__(self, save_dir: str, completed_epoch: int | None = None) -> None:
        super().__init__(save_dir, name="logs", version="")
        self.completed_epoch = completed_epoch
        self._backup: str | None = None

    @property
    def experiment(self):
        if self._experiment is not None or rank_zero_only.rank != 0:  # other processes do not write the log
            return super().experiment
        path = os.path.join(self.log_dir, "metrics.csv")
        earlier: list[dict] = []
        if self.completed_epoch is not None and os.path.exists(path):
            with open(path, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    values = {k: _value(v) for k, v in row.items() if k is not None}
                    epoch = values.get("epoch")
                    if epoch is not None and epoch <= self.completed_epoch:
                        earlier.append({k: v for k, v in values.items() if v is not None})
            self._backup = os.path.join(self.log_dir, "metrics.before_resume.csv")
            os.replace(path, self._backup)
        experiment = super().experiment
        experiment.metrics[:0] = earlier
        return experiment

    def save(self) -> None:
        super().save()
        if self._backup and os.path.exists(os.path.join(self.log_dir, "metrics.csv")):
            os.remove(self._backup)
            self._backup = None


def make_loggers(logging: LoggingOptions, run_name: str, directory: str, completed_epoch: int | None = None) -> list:
    """A CSV log always; a Weights & Biases run when asked for and not disabled."""
    loggers: list = [ResumedCSVLogger(directory, completed_epoch)]
    mode = os.environ.get("WANDB_MODE", "online" if logging.wandb_online else "offline")
    if mode != "disabled" and "wandb" in logging.loggers:
        try:
            os.environ.setdefault("WANDB_DIR", directory)
            loggers.append(WandbLogger(name=run_name, project=logging.wandb_project, save_dir=directory,
                                       offline=mode != "online", log_model=False))
        except Exception as exc:  # wandb is optional at run time
            warnings.warn(f"wandb logging disabled ({exc})", stacklevel=2)
    return loggers


def finish_loggers(loggers: list) -> None:
    """Close each trained model's Weights & Biases run, so the next model logs into a run of its own."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:  # only runs that were started
            logger.experiment.finish()
