"""The targets a detector trains on, checked where they enter the model.

A training-mode call takes one target per image, ``{"boxes" xyxy float [N, 4], "labels" int64
[N] in 1..K, "iscrowd" (optional)}``; crowd boxes are left out of training, and a malformed or
degenerate box raises ``ValueError`` naming the target and the box.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def training_targets(targets: Sequence[dict[str, Tensor]] | None, model: str) -> list[dict[str, Tensor]]:
    """The checked targets of a training-mode call of detector ``model`` (`training_target` each)."""
    if targets is None:
        raise ValueError(f"{model} in training mode needs targets (or call .eval())")
    return [training_target(t, i) for i, t in enumerate(targets)]


def training_target(target: dict[str, Tensor], index: int) -> dict[str, Tensor]:
    """Checked ``boxes``/``labels`` of one target, crowd boxes removed."""
    boxes, labels = target["boxes"], target["labels"]
    if not boxes.is_floating_point() or boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"target {index}: boxes must be a float [N, 4] tensor, got "
                         f"{boxes.dtype} {list(boxes.shape)}")
    if labels.dtype != torch.int64 or labels.shape != boxes.shape[:1]:
        raise ValueError(f"target {index}: labels must be int64 [N] with N = {boxes.shape[0]}, "
                         f"got {labels.dtype} {list(labels.shape)}")
    if "iscrowd" in target:
        keep = target["iscrowd"] == 0
        boxes, labels = boxes[keep], labels[keep]
    degenerate = torch.where((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]))[0]
    if degenerate.numel():
        j = int(degenerate[0])
        raise ValueError(f"target {index}: box {j} {boxes[j].tolist()} has no positive width "
                         f"and height (xyxy expected)")
    return {"boxes": boxes, "labels": labels}
