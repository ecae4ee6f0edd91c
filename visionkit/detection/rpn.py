"""Region Proposal Network (Ren et al. 2015): objectness and box deltas for k anchors per location.

Per image the RPN decodes every anchor's deltas (`BoxCoder` with unit weights), keeps the
``pre_nms_top_n`` highest-objectness anchors of each feature level, clips them to the image,
drops boxes under ``min_size`` and objectness ``< score_thresh`` (after sigmoid), runs NMS at
``nms_thresh`` within each level and keeps the ``post_nms_top_n`` best. In training it also
returns ``loss_objectness`` (BCE) and ``loss_rpn_box_reg`` (smooth L1) over anchors matched by
IoU (`Matcher.for_rpn`-style thresholds) and sampled by `BalancedPositiveNegativeSampler`.
The top-n counts are ``(training, testing)`` pairs. Same rules as torchvision's
``RegionProposalNetwork``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visionkit.ops import (
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    batched_nms,
    box_iou,
    clip_boxes_to_image,
    remove_small_boxes,
    smooth_l1_loss,
    zero_loss,
)


class RPNHead(nn.Module):
    """A shared 3x3 conv + ReLU, then 1x1 convs for objectness (A) and box deltas (4A) per level."""

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        # Nested Sequential: the parameter names of torchvision's RPNHead (conv.0.0.weight).
        self.conv = nn.Sequential(nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1), nn.ReLU(inplace=True)))
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: objectness ``[N, A, h, w]`` and deltas ``[N, 4A, h, w]``."""
        logits, deltas = [], []
        for feature in features:
            t = self.conv(feature)
            logits.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
        return logits, deltas


def flatten_levels(logits: Sequence[Tensor], deltas: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Objectness ``[N * sum_l h w A]`` and deltas ``[N * sum_l h w A, 4]`` in anchor order."""
    flat_logits, flat_deltas = [], []
    for level_logits, level_deltas in zip(logits, deltas, strict=True):
        n, a, h, w = level_logits.shape
        flat_logits.append(level_logits.permute(0, 2, 3, 1).reshape(n, -1))
        flat_deltas.append(level_deltas.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
    return torch.cat(flat_logits, dim=1).reshape(-1), torch.cat(flat_deltas, dim=1).reshape(-1, 4)


class RegionProposalNetwork(nn.Module):
    """Proposals (``xyxy`` in the padded batch's pixels) per image, and the RPN losses in training."""

    def __init__(
        self,
        anchor_generator: AnchorGenerator,
        head: nn.Module,
        *,
        fg_iou_thresh: float = 0.7,
        bg_iou_thresh: float = 0.3,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        pre_nms_top_n: tuple[int, int] = (2000, 1000),
        post_nms_top_n: tuple[int, int] = (2000, 1000),
        nms_thresh: float = 0.7,
        score_thresh: float = 0.0,
        min_size: float = 1e-3,
    ) -> None:
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.pre_nms_top_n = tuple(pre_nms_top_n)
        self.post_nms_top_n = tuple(post_nms_top_n)
        self.nms_thresh = nms_thresh
        self.score_thresh = score_thresh
        self.min_size = min_size

    def forward(
        self,
        images: Tensor,
        image_sizes: Sequence[tuple[int, int]],
        features: Mapping[str, Tensor],
        targets: Sequence[Mapping[str, Tensor]] | None = None,
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Proposals per image and (training only) the loss dict."""
        maps = list(features.values())
        logits, deltas = self.head(maps)
        anchors = self.anchor_generator(images, maps)
        per_level = [x.shape[1] * x.shape[2] * x.shape[3] for x in logits]  # traced: tensors
        objectness, pred_deltas = flatten_levels(logits, deltas)
        proposals = self.box_coder.decode(pred_deltas.detach(), anchors).view(len(anchors), -1, 4)
        boxes = self.filter_proposals(proposals, objectness.detach(), image_sizes, per_level)
        if not self.training:
            return boxes, {}
        if targets is None:
            raise ValueError("the RPN needs targets in training mode")
        labels, matched = self.assign_targets(anchors, [t["boxes"] for t in targets])
        regression_targets = self.box_coder.encode(matched, anchors)
        loss_objectness, loss_box = self.compute_loss(objectness, pred_deltas, labels,
                                                      list(regression_targets))
        return boxes, {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_box}

    def assign_targets(self, anchors: Sequence[Tensor], gt_boxes: Sequence[Tensor]
                       ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: anchor labels (1 object, 0 background, -1 ignored) and matched gt boxes."""
        labels, matched = [], []
        for image_anchors, gt in zip(anchors, gt_boxes, strict=True):
            if gt.numel() == 0:
                labels.append(image_anchors.new_zeros(image_anchors.shape[0]))
                matched.append(torch.zeros_like(image_anchors))
                continue
            idx = self.matcher(box_iou(gt, image_anchors))
            image_labels = (idx >= 0).to(image_anchors.dtype)
            image_labels[idx == Matcher.BETWEEN_THRESHOLDS] = -1.0
            labels.append(image_labels)
            matched.append(gt[idx.clamp(min=0)].to(image_anchors.dtype))
        return labels, matched

    def compute_loss(
        self,
        objectness: Tensor,
        pred_bbox_deltas: Tensor,
        labels: Sequence[Tensor],
        regression_targets: Sequence[Tensor],
    ) -> tuple[Tensor, Tensor]:
        """(BCE over the sampled anchors, smooth L1 of sampled positives / number sampled).

        Args:
            objectness: ``[A]`` or ``[A, 1]`` logits over the anchors of all images.
            pred_bbox_deltas: ``[A, 4]`` predicted deltas.
            labels: per image ``[A_i]`` floats, 1 object, 0 background, -1 ignored
                (`assign_targets`).
            regression_targets: per image ``[A_i, 4]`` deltas of the matched boxes.

        ``self.sampler`` picks ``batch_size_per_image`` anchors per image, a
        ``positive_fraction`` of them objects. As torchvision, the box loss (beta 1/9, summed)
        is divided by the number of sampled anchors; with none sampled both losses are 0.
        """
        pos_masks, neg_masks = self.sampler(labels)
        sampled_pos = torch.where(torch.cat(pos_masks, dim=0))[0]  # [P]
        sampled_neg = torch.where(torch.cat(neg_masks, dim=0))[0]  # [N]
        sampled = torch.cat((sampled_pos, sampled_neg), dim=0)  # [P + N]
        if sampled.numel() == 0:
            zero = zero_loss([objectness, pred_bbox_deltas])
            return zero, zero.clone()
        labels_cat = torch.cat(list(labels), dim=0)  # [A]
        targets_cat = torch.cat(list(regression_targets), dim=0)  # [A, 4]
        box_loss = smooth_l1_loss(pred_bbox_deltas[sampled_pos], targets_cat[sampled_pos],
                                  beta=1 / 9, reduction="sum") / sampled.numel()
        objectness_loss = F.binary_cross_entropy_with_logits(
            objectness.flatten()[sampled], labels_cat[sampled].to(objectness.dtype))
        return objectness_loss, box_loss

    def filter_proposals(
        self,
        proposals: Tensor,
        objectness: Tensor,
        image_sizes: Sequence[tuple[int, int]],
        per_level: Sequence[int],
    ) -> list[Tensor]:
        """Top-n per level, clip, size and score filters, per-level NMS, top-n overall."""
        num_images = proposals.shape[0]
        objectness = objectness.reshape(num_images, -1)
        pre_n = self.pre_nms_top_n[0 if self.training else 1]
        post_n = self.post_nms_top_n[0 if self.training else 1]
        top_idx, offset = [], 0
        for level_scores in objectness.split(list(per_level), dim=1):
            k = level_scores.shape[1]
            k = k.clamp(max=pre_n) if isinstance(k, Tensor) else min(pre_n, k)  # traced: in the graph
            top_idx.append(level_scores.topk(k, dim=1).indices + offset)
            offset += level_scores.shape[1]
        top_idx = torch.cat(top_idx, dim=1)
        levels = torch.cat([torch.full((n,), i, dtype=torch.int64, device=proposals.device)
                            for i, n in enumerate(per_level)])
        batch_idx = torch.arange(num_images, device=proposals.device)[:, None]
        scores = torch.sigmoid(objectness[batch_idx, top_idx])
        levels = levels[top_idx]
        proposals = proposals[batch_idx, top_idx]

        kept = []
        for boxes, image_scores, image_levels, size in zip(proposals, scores, levels, image_sizes,
                                                           strict=True):
            boxes = clip_boxes_to_image(boxes, size)
            keep = remove_small_boxes(boxes, self.min_size)
            boxes, image_scores, image_levels = boxes[keep], image_scores[keep], image_levels[keep]
            keep = torch.where(image_scores >= self.score_thresh)[0]
            boxes, image_scores, image_levels = boxes[keep], image_scores[keep], image_levels[keep]
            keep = batched_nms(boxes, image_scores, image_levels, self.nms_thresh)[:post_n]
            kept.append(boxes[keep])
        return kept
