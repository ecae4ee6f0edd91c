"""Detection losses: smooth L1, the Fast R-CNN multi-task loss and the RPN loss.

Labels follow the detection convention: ``0`` background, ``1..K`` classes
(``num_classes = K + 1`` logits). Box targets are `BoxCoder` deltas (tx, ty, tw, th).
Both multi-task losses regress positives only (smooth L1, beta = 1/9, summed) and divide the box
loss by the number of *sampled* examples, as Fast R-CNN and torchvision's ``fastrcnn_loss`` /
``RegionProposalNetwork.compute_loss`` do. One difference: with nothing sampled they return
zeros (still attached to the graph) where torchvision returns NaN.

Shapes. `fastrcnn_loss`: ``class_logits [R, num_classes]``; ``box_regression [R, 4 * num_classes]``
(class-specific: the deltas of each RoI's true class are used) or ``[R, 4]`` (class-agnostic);
per image ``labels [R_i]`` (int64) and ``regression_targets [R_i, 4]``.
`rpn_loss`: ``objectness [A]`` or ``[A, 1]`` logits and ``pred_bbox_deltas [A, 4]`` over the
anchors of all images; per image ``labels [A_i]`` (1 object, 0 background, -1 ignored; floats
like torchvision's) and ``regression_targets [A_i, 4]``; ``sampler`` picks the anchors, e.g.
``BalancedPositiveNegativeSampler(256, 0.5)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Sampler = Callable[[Sequence[Tensor]], tuple[list[Tensor], list[Tensor]]]


def smooth_l1_loss(
    input: Tensor, target: Tensor, beta: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Huber-style loss: ``0.5 d**2 / beta`` for ``|d| < beta``, else ``|d| - 0.5 beta``."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
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


def _zero(*tensors: Tensor) -> Tensor:
    """A 0 scalar that keeps the inputs in the autograd graph."""
    return sum((t.sum() * 0.0 for t in tensors), torch.zeros((), device=tensors[0].device))


def fastrcnn_loss(
    class_logits: Tensor,
    box_regression: Tensor,
    labels: Sequence[Tensor],
    regression_targets: Sequence[Tensor],
) -> tuple[Tensor, Tensor]:
    """(CE over the sampled RoIs, smooth L1 of positives / number of RoIs); 0 = background."""
    labels_cat = torch.cat(list(labels), dim=0)
    targets_cat = torch.cat(list(regression_targets), dim=0)
    num_rois = labels_cat.numel()
    if num_rois == 0:
        zero = _zero(class_logits, box_regression)
        return zero, zero.clone()

    classification_loss = F.cross_entropy(class_logits, labels_cat)
    positive = torch.where(labels_cat > 0)[0]
    deltas = box_regression.reshape(num_rois, -1, 4)
    class_index = labels_cat[positive] if deltas.shape[1] > 1 else torch.zeros_like(positive)
    box_loss = smooth_l1_loss(
        deltas[positive, class_index], targets_cat[positive], beta=1 / 9, reduction="sum"
    )
    return classification_loss, box_loss / num_rois


def rpn_loss(
    objectness: Tensor,
    pred_bbox_deltas: Tensor,
    labels: Sequence[Tensor],
    regression_targets: Sequence[Tensor],
    sampler: Sampler,
) -> tuple[Tensor, Tensor]:
    """(BCE over the sampled anchors, smooth L1 of sampled positives / number sampled)."""
    pos_masks, neg_masks = sampler(labels)
    sampled_pos = torch.where(torch.cat(pos_masks, dim=0))[0]
    sampled_neg = torch.where(torch.cat(neg_masks, dim=0))[0]
    sampled = torch.cat((sampled_pos, sampled_neg), dim=0)
    if sampled.numel() == 0:
        zero = _zero(objectness, pred_bbox_deltas)
        return zero, zero.clone()

    labels_cat = torch.cat(list(labels), dim=0)
    targets_cat = torch.cat(list(regression_targets), dim=0)
    box_loss = smooth_l1_loss(
        pred_bbox_deltas[sampled_pos], targets_cat[sampled_pos], beta=1 / 9, reduction="sum"
    ) / sampled.numel()
    objectness_loss = F.binary_cross_entropy_with_logits(
        objectness.flatten()[sampled], labels_cat[sampled].to(objectness.dtype)
    )
    return objectness_loss, box_loss
