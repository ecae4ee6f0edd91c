"""COCO mAP: `evaluate_coco` with our fast exact backend or pycocotools, and its result object."""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from visionkit.errors import ConfigError
from visionkit.evaluation.coco_fast import evaluate_bbox
from visionkit.evaluation.coco_inputs import (
    CocoDetections,
    CocoGroundTruth,
    load_detections,
    load_ground_truth,
)
from visionkit.evaluation.coco_params import (
    AREA_LABELS,
    AREA_RANGES,
    IOU_THRESHOLDS,
    MAX_DETS,
    RECALL_THRESHOLDS,
    STAT_NAMES,
    STAT_SPECS,
)

BACKENDS = ("fast", "pycocotools")
IOU_TYPES = ("bbox", "segm")


@dataclass(frozen=True)
class CocoEvalResult:
    """The 12 COCO summary numbers, per-class AP, and pycocotools' precision/recall arrays.

    ``precision`` is [T, R, K, A, M] (IoU thresholds, recall thresholds, categories in
    ``category_ids`` order, area ranges all/small/medium/large, maxDets 1/10/100) and ``recall``
    [T, K, A, M]; both hold -1 where a category has no GT in an area range, as in pycocotools.
    """

    stats: dict[str, float]  # AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl
    precision: np.ndarray
    recall: np.ndarray
    category_ids: tuple[int, ...]
    category_names: tuple[str, ...]
    iou_type: str = "bbox"
    backend: str = "fast"
    num_detections: int | None = None  # results evaluated (None: not counted)

    @property
    def per_class(self) -> list[dict[str, Any]]:
        """AP (IoU 0.50:0.95) and AP50 per category, area all, maxDets 100; NaN without GT."""
        rows = []
        names = zip(self.category_ids, self.category_names, strict=True)
        for k, (cat_id, name) in enumerate(names):
            ap = self.precision[:, :, k, 0, -1]
            rows.append({"category_id": cat_id, "name": name, "AP": _mean_valid(ap),
                         "AP50": _mean_valid(ap[0])})
        return rows

    def summary(self) -> str:
        """The 12-line table, in the layout of pycocotools' ``COCOeval.summarize``."""
        lines = []
        for (name, is_ap, iou, area, max_det) in STAT_SPECS:
            title, kind = ("Average Precision", "(AP)") if is_ap else ("Average Recall", "(AR)")
            iou_str = (f"{IOU_THRESHOLDS[0]:0.2f}:{IOU_THRESHOLDS[-1]:0.2f}" if iou is None
                       else f"{iou:0.2f}")
            lines.append(f" {title:<18} {kind} @[ IoU={iou_str:<9} | area={area:>6s} | "
                         f"maxDets={max_det:>3d} ] = {self.stats[name]:0.3f}")
        return "\n".join(lines)

    def per_class_table(self) -> str:
        """Per-class AP and AP50 as text, best AP first; categories without GT last, as '-'."""
        rows = sorted(self.per_class, key=lambda r: (math.isnan(r["AP"]), -np.nan_to_num(r["AP"])))
        width = max([len("category")] + [len(r["name"]) for r in rows])
        lines = [f"{'category':<{width}}  {'AP':>6}  {'AP50':>6}"]
        for r in rows:
            ap, ap50 = (f"{'-':>6}" if math.isnan(v) else f"{v:6.3f}" for v in (r["AP"], r["AP50"]))
            lines.append(f"{r['name']:<{width}}  {ap}  {ap50}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready stats, per-class AP and the evaluation parameters (NaN written as None)."""
        return {
            "iou_type": self.iou_type,
            "backend": self.backend,
            "stats": dict(self.stats),
            "per_class": [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                           for k, v in row.items()} for row in self.per_class],
            "params": {"iou_thresholds": IOU_THRESHOLDS.tolist(),
                       "num_recall_thresholds": len(RECALL_THRESHOLDS),
                       "area_ranges": dict(zip(AREA_LABELS, AREA_RANGES.tolist(), strict=True)),
                       "max_dets": list(MAX_DETS)},
        }


def evaluate_coco(gt: str | os.PathLike | Mapping[str, Any] | Any,
                  detections: str | os.PathLike | Sequence[Mapping[str, Any]] | Mapping[Any, Any],
                  iou_type: str = "bbox", backend: str = "fast", *,
                  label_to_category: Mapping[int, int] | None = None) -> CocoEvalResult:
    """COCO mAP of ``detections`` against ``gt`` with pycocotools' default parameters.

    ``gt``: COCO instances JSON path, dict or pycocotools ``COCO``. ``detections``: COCO results
    JSON path, list of result dicts, or ``image_id -> {"boxes" xyxy [N, 4], "labels", "scores"}``
    from our detectors; labels are category ids unless ``label_to_category`` maps contiguous
    labels ``1..K`` to them (see `visionkit.evaluation.coco_inputs`). Every GT image and category
    is evaluated. ``backend="fast"`` equals pycocotools bit for bit on bbox; ``iou_type="segm"``
    always runs through pycocotools.
    """
    if iou_type not in IOU_TYPES:
        raise ConfigError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    truth = load_ground_truth(gt)
    dets = load_detections(detections, truth, label_to_category=label_to_category,
                           iou_type=iou_type)
    return evaluate_loaded(truth, dets, iou_type=iou_type, backend=backend)


def evaluate_loaded(gt: CocoGroundTruth, dt: CocoDetections, *, iou_type: str = "bbox",
                    backend: str = "fast") -> CocoEvalResult:
    """`evaluate_coco` on already loaded and validated ground truth and detections."""
    if backend == "fast" and iou_type == "bbox":
        precision, recall = evaluate_bbox(gt, dt)
        stats = summarize(precision, recall)
    else:
        precision, recall, stats = _evaluate_pycocotools(gt, dt, iou_type)
        backend = "pycocotools"
    return CocoEvalResult(stats=stats, precision=precision, recall=recall,
                          category_ids=tuple(gt.category_ids.tolist()),
                          category_names=gt.category_names, iou_type=iou_type, backend=backend,
                          num_detections=len(dt.score))


def summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The 12 stats from precision/recall arrays, with pycocotools' ``summarize`` arithmetic."""
    stats = {}
    for name, is_ap, iou, area, max_det in STAT_SPECS:
        s = precision if is_ap else recall
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        stats[name] = _mean_valid(s[..., AREA_LABELS.index(area), MAX_DETS.index(max_det)], -1.0)
    return stats


def _mean_valid(values: np.ndarray, missing: float = math.nan) -> float:
    """Mean of the entries > -1 (pycocotools' "defined" marker), or ``missing`` if none."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else missing


def _evaluate_pycocotools(gt: CocoGroundTruth, dt: CocoDetections, iou_type: str
                          ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Precision, recall and stats from pycocotools' COCOeval (its printing silenced)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = gt.to_pycocotools()
        results = dt.to_results()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = {"images": coco_gt.dataset["images"], "annotations": [],
                               "categories": coco_gt.dataset["categories"]}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, ev.stats, strict=True)}
    return ev.eval["precision"], ev.eval["recall"], stats
