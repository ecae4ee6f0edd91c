"""`fit_classifier`: one seeded classification run on an image folder, with its val-accuracy curve.

What the benchmarks and the demo's weights train through (the `classify fit` command builds
the same objects from a YAML config).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L

from visionkit.tasks.callbacks import MetricHistory
from visionkit.tasks.classification import ClassificationTask
from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule
from visionkit.tasks.trainer import build_trainer


@dataclass
class FitRecord:
    """Validation accuracy per epoch and wall time of one `fit_classifier` run."""

    val_acc: list[float]
    seconds: float
    best_model_path: str

    @property
    def best(self) -> float:
        """Best val accuracy over the epochs (what ``best.ckpt`` holds)."""
        return max(self.val_acc, default=float("nan"))

    @property
    def final(self) -> float:
        """Val accuracy after the last epoch."""
        return self.val_acc[-1] if self.val_acc else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: best, final, the curve (4 decimals) and seconds."""
        return {"best": round(self.best, 4), "final": round(self.final, 4),
                "val_acc": [round(v, 4) for v in self.val_acc], "seconds": round(self.seconds, 1)}


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
    L.seed_everything(seed, verbose=False)
    dm = ImageFolderDataModule(str(root), **dict(data or {}))
    task = ClassificationTask(num_classes=dm.num_classes, class_names=dm.classes,
                              image_size=dm.image_size, **dict(model or {}))
    history = MetricHistory("val_acc")
    options = {"enable_progress_bar": False, "enable_model_summary": False, "log_every_n_steps": 2,
               **dict(trainer or {})}
    fit_trainer = build_trainer(str(out), max_epochs=epochs, callbacks=[history], **options)
    started = time.perf_counter()
    fit_trainer.fit(task, dm)
    seconds = time.perf_counter() - started
    best_path = fit_trainer.checkpoint_callback.best_model_path if fit_trainer.checkpoint_callback else ""
    return FitRecord(history.values, seconds, best_path), task
