"""Pictures of a run beside its metrics.csv: the first training batch as the model gets it, and
the curves.

`train_batch0.jpg`: the run's first training batch after the data pipeline's augmentation (and
before batch MixUp/CutMix, which draws random numbers inside the step), de-normalised, with
class names (classification) or boxes and names (detection) drawn in: what to look at when
augmentation goes wrong. Drawing draws no random numbers, so runs stay reproducible. A resumed
run keeps the first run's picture.

`results.png`: every metric of `metrics.csv` against the epoch, redrawn after each validation
and at the end of fitting. Rank 0 writes both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import lightning as L

from visionkit.evaluation.drawing import image_grid
from visionkit.evaluation.plots import plot_training_curves
from visionkit.fileio import atomic_write_with

BATCH_PICTURE = "train_batch0.jpg"
CURVES = "results.png"
MAX_IMAGES = 16


class TrainingPictures(L.Callback):
    """Writes `train_batch0.jpg` and `results.png` into the run folder (see the module docstring).

    The task provides ``batch_pictures(batch) -> (RGB uint8 images, captions)``.
    """

    def _folder(self, trainer: L.Trainer) -> Path | None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank must ask
        return Path(log_dir) if trainer.is_global_zero and log_dir else None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:  # noqa: D102
        if batch_idx != 0 or trainer.current_epoch != 0 or trainer.sanity_checking:
            return
        folder = self._folder(trainer)
        if folder is None or (folder / BATCH_PICTURE).exists():
            return
        images, captions = pl_module.batch_pictures(batch)
        if not images:
            return
        grid = cv2.cvtColor(image_grid(images[:MAX_IMAGES], captions[:MAX_IMAGES]), cv2.COLOR_RGB2BGR)

        def write(tmp: str) -> None:
            if not cv2.imwrite(tmp, grid, [cv2.IMWRITE_JPEG_QUALITY, 90]):
                raise OSError(f"{folder / BATCH_PICTURE}: cv2 could not write the picture")

        atomic_write_with(folder / BATCH_PICTURE, write)

    def _curves(self, trainer: L.Trainer) -> None:
        folder = self._folder(trainer)
        if folder is not None and (folder / "metrics.csv").is_file():
            plot_training_curves(folder / "metrics.csv", folder / CURVES)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: D102
        if not trainer.sanity_checking:
            self._curves(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: D102
        self._curves(trainer)
