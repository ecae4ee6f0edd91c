"""Non-maximum suppression and the RoI-head post-processing built on it.

Convention: ``xyxy`` pixel boxes ``[N, 4]`` with scores ``[N]``; a box is dropped when its IoU with
a higher-scoring kept box (of the same class, for the batched form) is ``> iou_threshold``.
Results are int64 indices into the input, sorted by decreasing score — the same as
``torchvision.ops.nms`` / ``batched_nms``, whose C++/CUDA kernel does the work here.
`nms_reference` is a slow pure-PyTorch version of the same rule, kept for tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torchvision.ops
from torch import Tensor

from visionkit.ops.box_coder import BoxCoder
from visionkit.ops.boxes import box_iou, clip_boxes_to_image, remove_small_boxes

# Above this many coordinates, per-class NMS calls beat one call on class-offset boxes
# (quadratic work across classes); the same switch points as torchvision.
_PER_CLASS_ABOVE = {"cpu": 4_000}
_PER_CLASS_ABOVE_DEFAULT = 100_000


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the boxes kept by greedy NMS, by decreasing score."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    return torchvision.ops.nms(boxes, scores, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Indices kept by NMS run independently within each category ``idxs``, by decreasing score."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    limit = _PER_CLASS_ABOVE.get(boxes.device.type, _PER_CLASS_ABOVE_DEFAULT)
    if boxes.numel() > limit:
        return _batched_nms_per_class(boxes, scores, idxs, iou_threshold)
    # Shift each class into its own region so boxes of different classes never overlap.
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return torchvision.ops.nms(boxes + offsets[:, None], scores, iou_threshold)


def _batched_nms_per_class(
    boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float
) -> Tensor:
    """Batched NMS as one kernel call per class on contiguous, class-sorted slices."""
    by_class = torch.argsort(idxs, stable=True)
    sorted_boxes, sorted_scores = boxes[by_class], scores[by_class]
    counts = torch.unique_consecutive(idxs[by_class], return_counts=True)[1].tolist()
    kept, start = [], 0
    for count in counts:
        stop = start + count
        kept.append(torchvision.ops.nms(sorted_boxes[start:stop], sorted_scores[start:stop],
                                        iou_threshold) + start)
        start = stop
    keep = by_class[torch.cat(kept)]
    return keep[torch.argsort(scores[keep], descending=True)]


def nms_reference(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Pure-PyTorch greedy NMS (slow; for tests): same rule and output as `nms`."""
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(order.numel(), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(order.numel()):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]


def postprocess_detections(
    class_logits: Tensor,
    box_regression: Tensor,
    proposals: Sequence[Tensor],
    image_shapes: Sequence[tuple[int, int]],
    *,
    box_coder: BoxCoder | None = None,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
    min_size: float = 1e-2,
) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Per image (boxes, scores, labels) from RoI-head outputs, as torchvision's RoIHeads.

    ``class_logits`` ``[R, num_classes]`` (column 0 = background, ``num_classes = K + 1``),
    ``box_regression`` ``[R, 4 * num_classes]`` (or class-agnostic ``[R, 4]``) deltas for
    ``proposals`` (per image ``xyxy``).
    Each (RoI, class >= 1) pair is a candidate: softmax score ``> score_thresh``, box decoded and
    clipped to its ``(height, width)``, sides ``>= min_size``, then per-class NMS at
    ``nms_thresh`` and the ``detections_per_img`` best. Labels are int64 in ``1..K``.
    """
    box_coder = box_coder or BoxCoder((10.0, 10.0, 5.0, 5.0))
    num_classes = class_logits.shape[-1]
    counts = [p.shape[0] for p in proposals]
    pred_boxes = box_coder.decode(box_regression, list(proposals)).split(counts, 0)
    pred_scores = F.softmax(class_logits, -1).split(counts, 0)

    all_boxes, all_scores, all_labels = [], [], []
    for boxes, scores, image_shape in zip(pred_boxes, pred_scores, image_shapes, strict=True):
        if boxes.shape[1] == 1:  # class-agnostic regression: one box for every class
            boxes = boxes.expand(-1, num_classes, -1)
        boxes = clip_boxes_to_image(boxes, image_shape)[:, 1:].reshape(-1, 4)
        labels = torch.arange(1, num_classes, device=class_logits.device).repeat(scores.shape[0])
        scores = scores[:, 1:].reshape(-1)

        keep = torch.where(scores > score_thresh)[0]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = remove_small_boxes(boxes, min_size)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, nms_thresh)[:detections_per_img]
        all_boxes.append(boxes[keep])
        all_scores.append(scores[keep])
        all_labels.append(labels[keep])
    return all_boxes, all_scores, all_labels
