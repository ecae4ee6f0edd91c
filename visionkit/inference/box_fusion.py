"""Weighted boxes fusion (Solovyev et al. 2021): one box per cluster of overlapping predictions.

Used to combine the detections of several models (or of one model on augmented copies of an
image). Per class, boxes are taken in decreasing score; each joins the first fused box it
overlaps with IoU > ``iou_threshold`` (else starts a new one). A fused box is the
score-weighted mean of its members' corners; its score is their mean score times
``min(members, num_sources) / num_sources``, so a box only some sources found scores lower.
"""

from __future__ import annotations

import torch
from torch import Tensor

from visionkit.ops import box_iou


def weighted_boxes_fusion(boxes: Tensor, scores: Tensor, labels: Tensor, num_sources: int,
                          iou_threshold: float = 0.55) -> tuple[Tensor, Tensor, Tensor]:
    """Fused ``(boxes [F, 4], scores [F], labels [F])`` of the predictions of ``num_sources``
    sources pooled as ``boxes [N, 4]`` xyxy, ``scores [N]``, ``labels [N]``; best first."""
    if num_sources < 1:
        raise ValueError(f"num_sources must be >= 1, got {num_sources}")
    out_boxes, out_scores, out_labels = [], [], []
    for label in labels.unique().tolist():
        index = torch.where(labels == label)[0]
        order = index[scores[index].argsort(descending=True, stable=True)]
        fused: list[Tensor] = []  # per cluster: the fused box [4]
        members: list[list[int]] = []  # per cluster: indices into boxes
        for i in order.tolist():
            if fused:
                overlap = box_iou(boxes[i][None], torch.stack(fused))[0]  # [C]
                best = int(overlap.argmax())
                if overlap[best] > iou_threshold:
                    members[best].append(i)
                    weights = scores[members[best]]  # [m]
                    fused[best] = (boxes[members[best]] * weights[:, None]).sum(0) / weights.sum()
                    continue
            fused.append(boxes[i].clone())
            members.append([i])
        for box, cluster in zip(fused, members, strict=True):
            confidence = scores[cluster].mean() * min(len(cluster), num_sources) / num_sources
            out_boxes.append(box)
            out_scores.append(confidence)
            out_labels.append(label)
    if not out_boxes:
        return boxes.new_zeros((0, 4)), scores.new_zeros(0), labels.new_zeros(0)
    fused_scores = torch.stack(out_scores)
    order = fused_scores.argsort(descending=True, stable=True)
    return (torch.stack(out_boxes)[order], fused_scores[order],
            torch.tensor(out_labels, dtype=labels.dtype)[order])
