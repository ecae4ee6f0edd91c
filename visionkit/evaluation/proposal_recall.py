"""Proposal recall: the fraction of ground-truth boxes some proposal covers, vs proposals per image.

A ground-truth box is recalled at IoU ``t`` by the first ``n`` proposals of its image when one
of them overlaps it with IoU >= ``t`` (crowd boxes are left out, as COCO does). Also reported:
the average best overlap (ABO), the mean over ground-truth boxes of their best IoU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from visionkit.ops import box_iou

COUNTS = (10, 50, 100, 200, 500, 1000, 2000)
IOUS = (0.5, 0.7)


@dataclass
class RecallReport:
    """Recall per IoU threshold (keys "0.5", ...) at each proposal count, and the totals."""

    counts: list[int]
    recall: dict[str, list[float]]
    average_best_overlap: dict[str, float]  # per count, key str(count)
    num_images: int
    num_boxes: int
    mean_proposals: float

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def proposal_recall(proposals: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray],
                    counts: Sequence[int] = COUNTS, ious: Sequence[float] = IOUS) -> RecallReport:
    """Recall of per-image ranked ``proposals`` against ``gt_boxes`` (both xyxy ``[N, 4]``)."""
    if len(proposals) != len(gt_boxes):
        raise ValueError(f"{len(proposals)} proposal arrays for {len(gt_boxes)} images")
    # best IoU of each GT box among the first n proposals, for every n in counts
    best = np.zeros((len(counts), 0))
    for boxes, gt in zip(proposals, gt_boxes, strict=True):
        gt = np.asarray(gt, np.float32).reshape(-1, 4)
        if not len(gt):
            continue
        iou = box_iou(torch.from_numpy(gt), torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4)))
        running = torch.cummax(iou, dim=1).values if iou.shape[1] else torch.zeros((len(gt), 1))
        columns = [min(n, iou.shape[1]) - 1 for n in counts]
        image_best = torch.stack([running[:, c] if c >= 0 else torch.zeros(len(gt)) for c in columns])
        best = np.concatenate([best, image_best.numpy()], axis=1)
    recall = {str(t): [float((row >= t).mean()) if best.shape[1] else 0.0 for row in best] for t in ious}
    abo = {str(n): float(row.mean()) if best.shape[1] else 0.0 for n, row in zip(counts, best, strict=True)}
    return RecallReport(list(counts), recall, abo, len(proposals), int(best.shape[1]),
                        float(np.mean([len(p) for p in proposals])) if len(proposals) else 0.0)
