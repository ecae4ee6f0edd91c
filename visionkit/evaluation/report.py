"""An evaluation report on disk: metrics.json plus PR-curve and per-class AP figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from visionkit.evaluation.coco import CocoEvalResult, evaluate_coco
from visionkit.evaluation.plots import plot_class_ap, plot_pr_curve
from visionkit.fileio import write_json

# file name -> IoU threshold of the PR-curve figure (None: mean over 0.50:0.95)
PR_CURVES: dict[str, float | None] = {
    "pr_curve_iou50.png": 0.5,
    "pr_curve_iou75.png": 0.75,
    "pr_curve_iou50-95.png": None,
}


def write_report(result: CocoEvalResult, out_dir: str | os.PathLike, **meta: Any) -> list[Path]:
    """Write ``metrics.json`` (``meta``, stats, per-class AP), the PR curves and the per-class
    AP chart into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    paths = [write_json(out / "metrics.json", {**meta, **result.to_dict()})]
    paths += [plot_pr_curve(result, out / name, iou) for name, iou in PR_CURVES.items()]
    paths.append(plot_class_ap(result, out / "class_ap.png"))
    return paths


def evaluate_to_dir(gt: str | os.PathLike, pred: str | os.PathLike, out_dir: str | os.PathLike,
                    *, iou_type: str = "bbox", backend: str = "fast"
                    ) -> tuple[CocoEvalResult, list[Path]]:
    """`evaluate_coco` on a GT JSON and a results JSON, then `write_report` into ``out_dir``."""
    result = evaluate_coco(gt, pred, iou_type=iou_type, backend=backend)
    paths = write_report(result, out_dir, gt=str(gt), pred=str(pred))
    return result, paths
