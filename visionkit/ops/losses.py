"""Detection losses shared by the box heads: smooth L1 and the Fast R-CNN multi-task loss.

Labels follow the detection convention: ``0`` background, ``1..K`` classes
(``num_classes = K + 1`` logits). Box targets are `BoxCoder` deltas (tx, ty, tw, th).
The multi-task loss regresses positives only (smooth L1, beta = 1/9, summed) and divides the
box loss by the number of *sampled* examples, as Fast R-CNN and torchvision's ``fastrcnn_loss``
do. One difference: with nothing sampled it returns zeros (still attached to the graph) where
torchvision returns NaN.

Shapes. `fastrcnn_loss`: ``class_logits [R, num_classes]``; ``box_regression [R, 4 * num_classes]``
(class-specific: the deltas of each RoI's true class are used) or ``[R, 4]`` (class-agnostic);
per image ``labels [R_i]`` (int64) and ``regression_targets [R_i, 4]``.
The RPN's loss is `visionkit.detection.rpn.RegionProposalNetwork.compute_loss`, built on these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def smooth_l1_loss(
    input: Tensor, target: Tensor, beta: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Huber-style loss: ``0.5 d**2 / beta`` for ``|d| < beta``, else ``|d| - 0.5 beta``."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got '{reduction}'")
    diff = (input - target).abs()
    if beta > 0:
        loss = torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
    else:
        loss = diff
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


def zero_loss(tensors: list[Tensor]) -> Tensor:
    """A 0 scalar that keeps ``tensors`` in the autograd graph (the loss when nothing is sampled)."""
    total = torch.zeros((), device=tensors[0].device)
    for t in tensors:
        total = total + t.sum() * 0.0
    return total


def fastrcnn_loss(
    class_logits: Tensor,
    box_regression: Tensor,
    labels: list[Tensor],
    regression_targets: list[Tensor],
) -> tuple[Tensor, Tensor]:
    """(CE over the sampled RoIs, smooth L1 of positives / number of RoIs); 0 = background."""
    labels_cat = torch.cat(labels, dim=0)
    targets_cat = torch.cat(regression_targets, dim=0)
    num_rois = labels_cat.numel()
    if num_rois == 0:
        zero = zero_loss([class_logits, box_regression])
        return zero, zero.clone()

    classification_loss = F.cross_entropy(class_logits, labels_cat)
    positive = torch.where(labels_cat > 0)[0]
    deltas = box_regression.reshape(num_rois, -1, 4)
    class_index = labels_cat[positive] if deltas.shape[1] > 1 else torch.zeros_like(positive)
    box_loss = smooth_l1_loss(
        deltas[positive, class_index], targets_cat[positive], beta=1 / 9, reduction="sum"
    )
    return classification_loss, box_loss / num_rois
