"""Pictures of a training run: the images the model is fed (a grid) and its curves (results.png).

`image_grid` tiles RGB uint8 images, each fitted into a square cell and captioned, into one
image (what `train_batch0.jpg` holds). `plot_training_curves` draws every metric column of a
Lightning ``metrics.csv`` against the epoch, training and validation metrics of one quantity on
one panel.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from visionkit.evaluation.plots import _figure, _save

COUNTERS = ("epoch", "step")


def image_grid(images: Sequence[np.ndarray], captions: Sequence[str] | None = None,
               cell: int = 256, columns: int | None = None) -> np.ndarray:
    """RGB uint8 ``[rows * cell, columns * cell, 3]``: each image scaled to fit its cell (aspect
    kept, grey margin), its caption (if any) on a dark strip at the top."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    grid = np.full((rows * cell, columns * cell, 3), 114, np.uint8)
    for i, image in enumerate(images):
        scale = cell / max(image.shape[:2])
        height, width = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        fitted = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)
        top, left = (i // columns) * cell, (i % columns) * cell
        grid[top:top + height, left:left + width] = fitted
        if captions is not None and captions[i]:
            _caption(grid, captions[i], left, top, cell)
    return grid


def _caption(grid: np.ndarray, text: str, left: int, top: int, cell: int) -> None:
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, cell / 600)
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    width = min(tw + 4, cell)
    grid[top:top + th + base + 4, left:left + width] = (30, 30, 30)
    cv2.putText(grid, text, (left + 2, top + th + 2), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def read_metrics(metrics_csv: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per metric column of a Lightning ``metrics.csv``: (epochs, values) of its filled rows."""
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in (rows[0].keys() if rows else ()):
        if name in COUNTERS:
            continue
        filled = [(float(r["epoch"]), float(r[name])) for r in rows if r.get(name) and r.get("epoch")]
        if filled:
            epochs, values = zip(*filled, strict=True)
            out[name] = (np.asarray(epochs), np.asarray(values))
    return out


def plot_training_curves(metrics_csv: str | os.PathLike, path: str | os.PathLike) -> Path | None:
    """results.png: one panel per quantity (``train_loss`` and ``val_loss`` share ``loss``, the
    per-class ``val_acc/<name>`` share one), per-step values as a thin line, per-epoch values as
    dots; None when nothing is logged yet."""
    metrics = read_metrics(metrics_csv)
    if not metrics:
        return None
    panels: dict[str, list[str]] = {}
    for name in metrics:
        quantity = name.removeprefix("train_").removeprefix("val_")
        quantity = quantity.removesuffix("_step").removesuffix("_epoch")
        if "/" in quantity:  # val_acc/<class>: one panel for all classes
            quantity = quantity.split("/")[0] + " per class"
        panels.setdefault(quantity, []).append(name)
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = _figure((4.2 * columns, 3.2 * rows))
    for index, (quantity, names) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, columns, index + 1)
        for name in names:
            epochs, values = metrics[name]
            if len(np.unique(epochs)) < len(epochs):  # logged per step: a line over fractional epochs
                position = np.concatenate([_spread(epochs[epochs == e], e) for e in np.unique(epochs)])
                ax.plot(position, values, lw=0.8, alpha=0.7, label=name)
            else:
                ax.plot(epochs, values, marker="o", ms=3, label=name)
        ax.set(title=quantity, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _spread(epochs: np.ndarray, epoch: float) -> np.ndarray:
    """Positions ``epoch + i / n`` for the ``n`` step rows logged in one epoch."""
    return epoch + np.arange(len(epochs)) / len(epochs)
