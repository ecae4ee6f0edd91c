"""Trainer defaults shared by the CLI and programmatic runs: loggers and atomic checkpoints."""

from __future__ import annotations

import csv
import logging
import os
import warnings
from typing import Any

import lightning as L
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from visionkit.fileio import atomic_open
from visionkit.runtime import warning_line
from visionkit.tasks.checkpoint_io import AtomicCheckpointIO


class _ContinuedMetricsWriter(ExperimentWriter):
    """Appends to an existing `metrics.csv`, first dropping the rows of epochs after ``last_epoch``
    (logged by the interrupted run after its checkpoint, and about to be trained again)."""

    def __init__(self, log_dir: str, last_epoch: int) -> None:
        self._last_epoch = last_epoch
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv here
        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = list(reader.fieldnames or []), list(reader)
        kept = [r for r in rows if not r.get("epoch") or int(float(r["epoch"])) <= self._last_epoch]
        with atomic_open(self.metrics_file_path, "w", newline="") as f:  # never half a file
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        self.metrics_keys = fields  # appended rows keep the file's columns (new ones rewrite it)


class _ContinuedCSVLogger(CSVLogger):
    """`CSVLogger` continuing the `metrics.csv` of an interrupted run (see `default_loggers`)."""

    def __init__(self, root: str, version: int, last_epoch: int) -> None:
        super().__init__(root, name="", version=version, flush_logs_every_n_steps=1)
        self._last_epoch = last_epoch

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:  # noqa: D102
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedMetricsWriter(self.log_dir, self._last_epoch)
        return self._experiment


def default_loggers(root: str, resume: tuple[int, int] | None = None) -> list:
    """CSV (`metrics.csv`) and TensorBoard loggers sharing one `root/version_N/` folder.

    Args:
        root: the run root; a new run takes the next free `version_N`.
        resume: ``(N, epoch)`` to continue `version_N` from a checkpoint saved at the end of
            ``epoch``: its `metrics.csv` keeps the rows up to that epoch, the best checkpoint
            stays the best of the whole job.
    """
    if resume is None:
        # Every step's row is flushed, so a killed run's metrics survive up to its last checkpoint.
        logger: CSVLogger = CSVLogger(root, name="", flush_logs_every_n_steps=1)
    else:
        logger = _ContinuedCSVLogger(root, *resume)
    return [logger, TensorBoardLogger(root, name="", version=logger.version, default_hp_metric=False)]


def with_atomic_checkpoints(plugins: Any) -> list:
    """`plugins` as a list, with AtomicCheckpointIO added unless a checkpoint IO is given."""
    plugins = list(plugins) if isinstance(plugins, list | tuple) else ([plugins] if plugins else [])
    if not any(hasattr(p, "save_checkpoint") for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins


class _LightningNoise(logging.Filter):
    """Drops Lightning's adverts and notices about its own internals from a run's console."""

    NOISE = ("💡 Tip:", "will override existing callbacks passed to Trainer",
             "to estimate number of stepping batches", "TPU available:",
             # the planned end of a fit is no news (our last line reports it; Lightning's was
             # glued to the progress bar); other stops (early stopping, max_time) still say so
             "`Trainer.fit` stopped: `max_epochs=", "`Trainer.fit` stopped: `max_steps=")

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return not any(text in record.getMessage() for text in self.NOISE)


def quiet_lightning() -> None:
    """Keep what a user needs on the console: no adverts, no deprecation notices of our deps."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _LightningNoise) for f in logger.filters):
            logger.addFilter(_LightningNoise())
    warnings.formatwarning = warning_line  # Lightning installs its own on import: ours again
    # LightningCLI warns when sys.argv also holds arguments; ours are sys.argv minus the prefix.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")


def build_trainer(root: str, **kwargs: Any) -> L.Trainer:
    """A Trainer writing under `root` with visionkit's loggers and checkpoint IO."""
    quiet_lightning()
    kwargs.setdefault("logger", default_loggers(root))
    kwargs["plugins"] = with_atomic_checkpoints(kwargs.get("plugins"))
    return L.Trainer(default_root_dir=root, **kwargs)
