"""Seeded training runs with their validation curves: `fit_classifier` and `fit_detector`.

What the benchmarks and the demo's weights train through (the `classify fit` / `detect fit`
commands build the same objects from a YAML config).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import lightning as L

from visionkit.tasks.callbacks import MetricHistory, StepClock
from visionkit.tasks.classification import ClassificationTask
from visionkit.tasks.detection import DetectionTask
from visionkit.tasks.detection_datamodule import DetectionDataModule
from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule
from visionkit.tasks.trainer import build_trainer


@dataclass
class FitRecord:
    """Validation metrics after each epoch and the wall time of one run."""

    monitor: str  # the metric best/final refer to (val_acc, val_map)
    values: dict[str, list[float]]  # metric name -> one value per validation
    elapsed: list[float]  # seconds from the start of training to each validation's end
    seconds: float  # wall time of the whole fit
    best_model_path: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def curve(self) -> list[float]:
        """The monitored metric per epoch."""
        return self.values[self.monitor]

    @property
    def best(self) -> float:
        """Best value of the monitored metric (what ``best.ckpt`` holds)."""
        return max(self.curve, default=float("nan"))

    @property
    def final(self) -> float:
        """The monitored metric after the last epoch."""
        return self.curve[-1] if self.curve else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: best, final, the curves (4 decimals), elapsed and total seconds."""
        return {"best": _round(self.best), "final": _round(self.final),
                **{name: [_round(v) for v in values] for name, values in self.values.items()},
                "elapsed": [round(t, 1) for t in self.elapsed], "seconds": round(self.seconds, 1),
                **self.extra}


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch as `fit_classifier` / `fit_detector` do (Lightning's
    ``seed_everything``), so a plain loop beside them draws the same initial weights."""
    L.seed_everything(seed, verbose=False)


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _fit(task: L.LightningModule, dm: L.LightningDataModule, out: str | os.PathLike,
         monitors: tuple[str, ...], epochs: int, minutes: float | None,
         trainer: Mapping[str, Any] | None) -> FitRecord:
    history = MetricHistory(monitors)
    options = {"enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 2,
               **dict(trainer or {})}
    if minutes is not None:
        options["max_time"] = timedelta(minutes=minutes)
    fit_trainer = build_trainer(str(out), max_epochs=epochs, callbacks=[history], **options)
    started = time.perf_counter()
    fit_trainer.fit(task, dm)
    seconds = time.perf_counter() - started
    checkpoint = fit_trainer.checkpoint_callback
    return FitRecord(monitors[0], history.values, history.elapsed, seconds,
                     checkpoint.best_model_path if checkpoint else "")


def fit_classifier(root: str | os.PathLike, out: str | os.PathLike, *, epochs: int, seed: int = 0,
                   data: Mapping[str, Any] | None = None, model: Mapping[str, Any] | None = None,
                   trainer: Mapping[str, Any] | None = None) -> tuple[FitRecord, ClassificationTask]:
    """Train a `ClassificationTask` on the image folder ``root``, writing its run under ``out``.

    Args:
        root: image folder (`ImageFolderDataModule`'s ``root``).
        out: run folder (checkpoints, metrics.csv).
        epochs: training epochs (a validation after each).
        seed: `seed_everything` seed: same seed, same run.
        data: `ImageFolderDataModule` arguments besides ``root``.
        model: `ClassificationTask` arguments besides the class list and image size (taken from
            the data).
        trainer: extra `Trainer` arguments.
    """
    seed_all(seed)
    dm = ImageFolderDataModule(str(root), **dict(data or {}))
    task = ClassificationTask(num_classes=dm.num_classes, class_names=dm.classes,
                              image_size=dm.image_size, **dict(model or {}))
    return _fit(task, dm, out, ("val_acc",), epochs, None, trainer), task


def fit_detector(train_json: str, val_json: str, image_root: str, out: str | os.PathLike, *,
                 epochs: int, minutes: float | None = None, seed: int = 0,
                 data: Mapping[str, Any] | None = None, model: Mapping[str, Any] | None = None,
                 trainer: Mapping[str, Any] | None = None) -> tuple[FitRecord, DetectionTask]:
    """Train a `DetectionTask` on COCO files, validating (COCO mAP) after each epoch.

    Args:
        train_json, val_json, image_root: the data (`DetectionDataModule`).
        out: run folder.
        epochs: the schedule's length; ``minutes``: a wall-clock budget that stops training
            earlier (Lightning's ``max_time``).
        seed: `seed_everything` seed.
        data, model, trainer: `DetectionDataModule`, `DetectionTask` (besides classes) and
            `Trainer` arguments.
    """
    seed_all(seed)
    dm = DetectionDataModule(train_json, val_json, image_root, **dict(data or {}))
    task = DetectionTask(num_classes=dm.num_classes, class_names=dm.classes,
                         category_ids=dm.category_ids, **dict(model or {}))
    return _fit(task, dm, out, ("val_map", "val_map50"), epochs, minutes, trainer), task


def timed_fit(task: L.LightningModule, loader: Any, root: str, skip: int = 0) -> float:
    """Seconds from batch ``skip``'s step to the last's inside `Trainer.fit` of one epoch over
    ``loader`` (no validation, no logger): what the train-step benchmark times."""
    clock = StepClock(skip)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, default_root_dir=root,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[clock])
    trainer.fit(task, train_dataloaders=loader)
    return clock.seconds
