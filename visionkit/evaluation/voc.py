"""PASCAL VOC average precision: 11-point (VOC2007) or all-point (VOC2010+), `difficult` ignored.

Boxes are ``xyxy`` in absolute pixels, continuous coordinates, so IoU has no "+1" in the widths.
The devkit's "+1" treats VOC's 1-based inclusive pixel indices; our COCO conversion
(``x1 = xmin - 1``, ``x2 = xmax``) already turns those into continuous coordinates, so on
converted boxes both give the same IoU.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from visionkit.evaluation.coco_inputs import to_numpy


def average_precision(recall: np.ndarray, precision: np.ndarray,
                      use_07_metric: bool = False) -> float:
    """Area under a PR curve: VOC2007's 11-point interpolation, or the all-point envelope."""
    recall, precision = np.asarray(recall, dtype=np.float64), np.asarray(precision, np.float64)
    if use_07_metric:
        points = [precision[recall >= t].max() if (recall >= t).any() else 0.0
                  for t in np.arange(0.0, 1.1, 0.1)]
        return float(np.sum(points) / 11.0)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.maximum.accumulate(np.concatenate(([0.0], precision, [0.0]))[::-1])[::-1]
    step = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))


def voc_ap(detections: Mapping[Hashable, Mapping[str, Any]],
           ground_truth: Mapping[Hashable, Mapping[str, Any]], *, iou_threshold: float = 0.5,
           use_07_metric: bool = False) -> float:
    """VOC AP of one class. ``detections``: image id -> ``{"boxes" [N, 4], "scores" [N]}``;
    ``ground_truth``: image id -> ``{"boxes" [M, 4], "difficult" [M] (optional)}``.

    In descending score order (ties in input order) a detection is a true positive when its best
    IoU, over its image's GTs, exceeds ``iou_threshold`` and that GT is not yet taken; a match to
    a difficult GT counts as neither. NaN when there is no non-difficult GT.
    """
    gts = {}
    for image_id, g in ground_truth.items():
        boxes = to_numpy(g["boxes"]).astype(np.float64).reshape(-1, 4)
        difficult = (to_numpy(g["difficult"]).astype(bool).reshape(-1) if "difficult" in g
                     else np.zeros(len(boxes), dtype=bool))
        gts[image_id] = (boxes, difficult, np.zeros(len(boxes), dtype=bool))
    num_pos = sum(int((~d).sum()) for _, d, _ in gts.values())
    images, boxes, scores = [], [], []
    for image_id, d in detections.items():
        b = to_numpy(d["boxes"]).astype(np.float64).reshape(-1, 4)
        images += [image_id] * len(b)
        boxes.append(b)
        scores.append(to_numpy(d["scores"]).astype(np.float64).reshape(-1))
    if num_pos == 0:
        return float("nan")
    if not images:
        return 0.0
    boxes, scores = np.concatenate(boxes), np.concatenate(scores)
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for i, det in enumerate(order):
        if images[det] not in gts or not len(gts[images[det]][0]):
            fp[i] = 1
            continue
        g_boxes, difficult, taken = gts[images[det]]
        iou = _iou(boxes[det], g_boxes)
        best = int(np.argmax(iou))
        if iou[best] <= iou_threshold:
            fp[i] = 1
        elif not difficult[best]:
            if taken[best]:
                fp[i] = 1
            else:
                tp[i] = taken[best] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return average_precision(tp / num_pos, precision, use_07_metric)


def voc_map(detections: Mapping[Hashable, Mapping[str, Any]],
            targets: Mapping[Hashable, Mapping[str, Any]], *, iou_threshold: float = 0.5,
            use_07_metric: bool = False) -> dict[int, float]:
    """`voc_ap` per label for our detector outputs ``{"boxes", "labels", "scores"}`` and targets
    ``{"boxes", "labels", "difficult" (optional)}`` keyed by image id; labels 1..K, sorted."""
    labels = sorted({int(v) for t in targets.values() for v in to_numpy(t["labels"]).reshape(-1)})
    out = {}
    for label in labels:
        dets = {}
        for image_id, d in detections.items():
            keep = to_numpy(d["labels"]).reshape(-1) == label
            dets[image_id] = {"boxes": to_numpy(d["boxes"]).reshape(-1, 4)[keep],
                              "scores": to_numpy(d["scores"]).reshape(-1)[keep]}
        gts = {}
        for image_id, t in targets.items():
            keep = to_numpy(t["labels"]).reshape(-1) == label
            gts[image_id] = {"boxes": to_numpy(t["boxes"]).reshape(-1, 4)[keep]}
            if "difficult" in t:
                gts[image_id]["difficult"] = to_numpy(t["difficult"]).reshape(-1)[keep]
        out[label] = voc_ap(dets, gts, iou_threshold=iou_threshold, use_07_metric=use_07_metric)
    return out


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of ``boxes`` (0 where the union is empty)."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = ((box[2] - box[0]) * (box[3] - box[1])
             + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
