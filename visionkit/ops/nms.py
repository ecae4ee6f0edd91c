"""Non-maximum suppression: greedy, per class (batched), and a pure-PyTorch reference.

Convention: ``xyxy`` pixel boxes ``[N, 4]`` with scores ``[N]``; a box is dropped when its IoU with
a higher-scoring kept box (of the same class, for the batched form) is ``> iou_threshold``.
Results are int64 indices into the input, sorted by decreasing score — the same as
``torchvision.ops.nms`` / ``batched_nms``, whose C++/CUDA kernel does the work here.
`batched_nms` is exactly NMS within each class with IoU computed in float64 (torchvision: in the
input dtype, on boxes shifted by class in that dtype, where a box thinner than the rounding step
at the shift loses its overlaps and coordinates below -1 let classes touch). The two agree
except for IoUs within float32 rounding of the threshold and such degenerate inputs.
`nms_reference` is a slow pure-PyTorch version of the same rule, kept for tests.

`batched_soft_nms` is Soft-NMS (Bodla et al. 2017) within each class: instead of dropping a box
that overlaps a kept one, it lowers its score, by ``exp(-IoU^2 / sigma)`` ("gaussian") or by
``1 - IoU`` when IoU ``> iou_threshold`` ("linear"), and drops it only once its score falls
below ``score_threshold``. Crowded scenes (cells, people, cars in a queue) keep the objects that
hard NMS throws away with their neighbours' duplicates.
"""

from __future__ import annotations

import torch
import torchvision.ops
from torch import Tensor

from visionkit.ops.boxes import box_iou


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the boxes kept by greedy NMS, by decreasing score."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    return torchvision.ops.nms(boxes, scores, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Indices kept by NMS run independently within each category ``idxs``, by decreasing score."""
    if torch.jit.is_tracing():
        return _batched_nms_traced(boxes, scores, idxs, iou_threshold)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    boxes64, scores64 = boxes.double(), scores.double()
    # Above this many coordinates, per-class NMS calls beat one call on class-shifted boxes
    # (whose work is quadratic across classes); the same switch points as torchvision.
    if boxes.numel() > (4_000 if boxes.device.type == "cpu" else 100_000):
        return _batched_nms_per_class(boxes64, scores64, idxs, iou_threshold)
    # One call on boxes shifted class by class into disjoint regions (a gap of 1 beyond the
    # boxes' full extent, so negative coordinates are safe too) -- valid only when the shift is
    # exact, i.e. leaves every box size and overlap as it was; float64 makes that the rule.
    offsets = (idxs.double() * (boxes64.max() - boxes64.min() + 1))[:, None]
    shifted = boxes64 + offsets
    if _exact_sum(boxes64, offsets, shifted):
        return torchvision.ops.nms(shifted, scores64, iou_threshold)
    return _batched_nms_per_class(boxes64, scores64, idxs, iou_threshold)


def _batched_nms_traced(
    boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float
) -> Tensor:
    """The class-shift path with no branch on data, for `torch.jit.trace` and ONNX export.

    A trace fixes Python-side decisions, so this skips the exactness check and the per-class
    split (the float64 shift is exact for pixel boxes and class counts of real models), and
    takes the extent over the boxes and 0 so that images with no boxes run too (a wider gap
    leaves the result as it is). ONNX's NonMaxSuppression rounds the shifted boxes to float32
    (torchvision's symbolic casts them), as torchvision's own batched_nms does.
    """
    boxes64 = boxes.double()
    extent = torch.cat((boxes64.reshape(-1), boxes64.new_zeros(1)))
    offsets = (idxs.double() * (extent.max() - extent.min() + 1))[:, None]
    return torchvision.ops.nms(boxes64 + offsets, scores.double(), iou_threshold)


def _exact_sum(a: Tensor, b: Tensor, total: Tensor) -> bool:
    """Whether ``total = a + b`` was computed without rounding (Knuth's TwoSum error is 0)."""
    a_part = total - b
    error = (a - a_part) + (b - (total - a_part))
    return bool((error == 0).all())


def _batched_nms_per_class(
    boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float
) -> Tensor:
    """Batched NMS as one kernel call per class (classes found by one sort, not N scans)."""
    by_class = torch.argsort(idxs, stable=True)
    counts: list[int] = torch.unique(idxs, return_counts=True)[1].tolist()
    kept: list[Tensor] = []
    for members in by_class.split(counts):
        kept.append(members[torchvision.ops.nms(boxes[members], scores[members], iou_threshold)])
    keep = torch.cat(kept)
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]


def nms_reference(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Pure-PyTorch greedy NMS (slow; for tests): same rule and output as `nms`."""
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(order.numel(), dtype=torch.bool, device=boxes.device)
    keep: list[int] = []
    for i in range(order.numel()):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]


SOFT_NMS_METHODS = ("linear", "gaussian")
SOFT_NMS_MIN_SCORE = 0.001  # a lowered score is dropped below this (mmcv's default min_score)


def soft_nms_min_score(score_thresh: float) -> float:
    """Where a detector's Soft-NMS drops lowered scores: `SOFT_NMS_MIN_SCORE`, or its candidate
    threshold ``score_thresh`` when that is lower."""
    return min(score_thresh, SOFT_NMS_MIN_SCORE)


def batched_soft_nms(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor,
    method: str = "gaussian",
    sigma: float = 0.5,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.05,
    max_kept: int | None = None,
) -> tuple[Tensor, Tensor]:
    """(indices kept, their lowered scores), by decreasing lowered score: Soft-NMS within each
    category ``idxs``.

    Picks are in decreasing score order and a pick's score never changes afterwards, so the
    first ``max_kept`` picks are the run's best ``max_kept``: the loop stops there. Each pick
    costs one ``[N]`` row of IoUs; no ``[N, N]`` matrix. ``method``: one of `SOFT_NMS_METHODS`
    (a plain ``str`` so that the function scripts).
    """
    if method != "linear" and method != "gaussian":
        raise ValueError("soft-NMS method must be 'linear' or 'gaussian', got " + method)
    limit = boxes.shape[0] if max_kept is None else min(max_kept, boxes.shape[0])
    boxes64 = boxes.double()
    current = scores.double().clone()  # [N]: lowered scores; -1 once picked or dropped
    current[current < score_threshold] = -1.0
    picked: list[Tensor] = []
    picked_scores: list[Tensor] = []
    for _ in range(limit):
        best = current.argmax()
        if current[best] < score_threshold:
            break
        picked.append(best)
        picked_scores.append(current[best].clone())
        current[best] = -1.0
        iou = box_iou(boxes64[best][None], boxes64)[0] * (idxs == idxs[best])  # [N]
        factor = (torch.exp(-iou * iou / sigma) if method == "gaussian"
                  else torch.where(iou > iou_threshold, 1 - iou, torch.ones_like(iou)))
        current = torch.where(current >= 0, current * factor, current)
        current[(current >= 0) & (current < score_threshold)] = -1.0
    if not picked:
        return torch.empty(0, dtype=torch.int64, device=boxes.device), scores[:0]
    return torch.stack(picked), torch.stack(picked_scores).to(scores.dtype)
