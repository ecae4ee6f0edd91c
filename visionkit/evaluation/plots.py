"""Evaluation figures as PNG files: one independent function per figure.

Each builds its own matplotlib ``Figure`` on the Agg canvas (no pyplot, no global state) and
writes it atomically.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from visionkit.evaluation.coco_params import IOU_THRESHOLDS, RECALL_THRESHOLDS
from visionkit.fileio import atomic_write_with

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from visionkit.evaluation.coco import CocoEvalResult
    from visionkit.evaluation.proposal_recall import RecallReport

_MAX_LABELLED_CLASSES = 10  # more get grey lines and no legend entries
COUNTERS = ("epoch", "step")  # metrics.csv columns that are not metrics


def plot_pr_curve(result: CocoEvalResult, path: str | os.PathLike, iou: float | None = 0.5
                  ) -> Path:
    """Precision-recall curves at IoU ``iou`` (None: averaged over 0.50:0.95), area all,
    100 detections: the mean over categories in bold, each category as a thin line."""
    from matplotlib import colormaps

    precision = result.precision[:, :, :, 0, -1]  # [T, R, K]
    if iou is None:
        curves = precision.mean(axis=0)
        label = f"{IOU_THRESHOLDS[0]:.2f}:{IOU_THRESHOLDS[-1]:.2f}"
    else:
        curves = precision[int(np.flatnonzero(np.isclose(IOU_THRESHOLDS, iou))[0])]
        label = f"{iou:.2f}"
    present = (precision > -1).all(axis=(0, 1))
    fig = _figure((7, 6))
    ax = fig.add_subplot()
    named = present.sum() <= _MAX_LABELLED_CLASSES
    for i, k in enumerate(np.flatnonzero(present)):
        ax.plot(RECALL_THRESHOLDS, curves[:, k], lw=1, alpha=0.8 if named else 0.35,
                color=colormaps["tab10"](i) if named else "0.6",
                label=f"{result.category_names[k]} (AP {curves[:, k].mean():.3f})" if named
                else None)
    if present.any():
        mean = curves[:, present].mean(axis=1)
        ax.plot(RECALL_THRESHOLDS, mean, lw=3, color="black",
                label=f"mean of {present.sum()} classes (AP {mean.mean():.3f})"
                + ("" if named else "; grey: each class"))
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
           title=f"Precision-recall, IoU={label} (area all, maxDets 100)")
    ax.grid(alpha=0.3)
    if present.any():  # curves run from the top left to the bottom right: that corner is free
        ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def plot_class_ap(result: CocoEvalResult, path: str | os.PathLike) -> Path:
    """Horizontal bars of per-class AP (IoU 0.50:0.95) over AP50, best class on top; classes
    without GT are left out."""
    rows = [r for r in result.per_class if not math.isnan(r["AP"])]
    rows.sort(key=lambda r: r["AP"])
    fig = _figure((8, 1.2 + 0.24 * max(len(rows), 1)))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    ax.barh(y, [r["AP50"] for r in rows], color="#9ecae1", label="AP50")
    ax.barh(y, [r["AP"] for r in rows], height=0.5, color="#08519c", label="AP (IoU 0.50:0.95)")
    for yi, r in zip(y, rows, strict=True):
        ax.text(r["AP50"] + 0.01, yi, f"{r['AP']:.3f}", va="center", fontsize=7)
    ax.set_yticks(y, [r["name"] for r in rows], fontsize=8)
    ax.set(xlim=(0, 1.1), ylim=(-0.7, len(rows) - 0.3), xlabel="average precision",
           title=f"Per-class AP ({len(rows)} classes, mean AP {result.stats['AP']:.3f})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _figure(size: tuple[float, float]) -> Figure:
    """A new figure on an Agg canvas, independent of pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path``, atomically."""
    return atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))


def plot_proposal_recall(report: RecallReport, path: str | os.PathLike) -> Path:
    """Recall vs number of proposals per image, one line per IoU threshold (log x axis)."""
    fig = _figure((5.5, 4))
    ax = fig.add_subplot()
    for iou, values in report.recall.items():
        ax.plot(report.counts, values, marker="o", label=f"IoU {iou}")
    ax.set_xscale("log")
    ax.set(xlabel="proposals per image", ylabel="recall", ylim=(0, 1.02),
           title=f"proposal recall ({report.num_boxes} boxes, {report.num_images} images)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_box_sizes(sides: np.ndarray, path: str | os.PathLike, title: str = "") -> Path:
    """Histogram of box sizes (sqrt of area, px; log bins) with COCO's small/large limits."""
    fig = _figure((6, 4))
    ax = fig.add_subplot()
    positive = sides[sides > 0]
    if len(positive):
        edges = np.geomspace(max(positive.min(), 1.0) / 1.05, positive.max() * 1.05, 40)
        ax.hist(positive, bins=edges, color="tab:blue")
        ax.set_xscale("log")
    for limit, name in ((32, "small | medium"), (96, "medium | large")):
        ax.axvline(limit, color="0.4", ls="--", lw=1)
        ax.text(limit, 1, f" {name}", transform=ax.get_xaxis_transform(), va="top", fontsize=8)
    ax.set(xlabel="box side, sqrt(area) in px", ylabel="boxes",
           title=f"Box sizes{': ' + title if title else ''} ({len(sides)} boxes)")
    return _save(fig, path)


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
