"""Fast R-CNN RoI heads: pool each proposal, two FC layers, class scores + class-specific deltas.

Training: ground-truth boxes join the proposals, each proposal is matched to a ground truth
(IoU >= ``fg_iou_thresh`` object, < ``bg_iou_thresh`` background), ``batch_size_per_image``
are sampled with ``positive_fraction`` positives (proposals whose best IoU is below
``bg_iou_low`` are not sampled: Fast R-CNN's background range [0.1, 0.5)), and `fastrcnn_loss` gives
``loss_classifier`` and ``loss_box_reg``. Inference: `postprocess_detections` (softmax scores,
decoded and clipped boxes, score threshold, per-class NMS, top ``detections_per_img``).
Labels: ``0`` background, ``1..K`` classes, ``num_classes = K + 1``. Parameter names follow
torchvision (``box_head.fc6``, ``box_predictor.cls_score``...).

Cascade R-CNN (Cai & Vasconcelos 2018), given `CascadeStage` s: each stage pools the boxes the
stage before it regressed (its most likely class's box) and has its own box head and
class-agnostic predictor, trained with positives at a higher IoU (0.6, 0.7) and deltas at
larger coder weights; no ground truth is added and nothing resampled after the first stage, and
each stage's gradient into the pooled features is scaled by 1 / stages (Detectron2's
``CascadeROIHeads``). At inference the score is the stages' mean class probability and the box
the last stage's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visionkit.ops import (
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    batched_nms,
    batched_soft_nms,
    box_iou,
    clip_boxes_to_image,
    fastrcnn_loss,
    infer_scale,
    remove_small_boxes,
    roi_pool,
)
from visionkit.ops.nms import SOFT_NMS_METHODS, soft_nms_min_score


class RoIPool(nn.Module):
    """Fast R-CNN RoIPool (max over bins) on one feature map; the scale is inferred per call."""

    def __init__(self, featmap_name: str, output_size: int) -> None:
        super().__init__()
        self.featmap_name = featmap_name
        self.output_size = (output_size, output_size)

    def forward(self, features: Mapping[str, Tensor], boxes: Sequence[Tensor],
                image_sizes: Sequence[tuple[int, int]]) -> Tensor:
        """Pooled ``[sum K_i, C, out, out]`` features of every image's boxes."""
        feature = features[self.featmap_name]
        largest = (max(s[0] for s in image_sizes), max(s[1] for s in image_sizes))
        return roi_pool(feature, list(boxes), self.output_size, infer_scale(feature, largest))


class TwoMLPHead(nn.Module):
    """Flatten, then fc6 + ReLU, fc7 + ReLU."""

    def __init__(self, in_features: int, representation_size: int = 1024) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x: Tensor) -> Tensor:
        """``[R, representation_size]`` features of pooled RoIs ``[R, C, h, w]``."""
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))


class FastRCNNPredictor(nn.Module):
    """Class logits ``[R, num_classes]`` and deltas ``[R, 4 * num_classes]`` (num_classes = K + 1),
    or ``[R, 4]``, one box for every class, when ``class_agnostic``."""

    def __init__(self, in_features: int, num_classes: int, class_agnostic: bool = False) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes)
        self.bbox_pred = nn.Linear(in_features, 4 if class_agnostic else num_classes * 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(class logits, box deltas: per class, or one set when class-agnostic)."""
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


class CascadeStage(nn.Module):
    """A refinement stage after the first (Cascade R-CNN): box head and predictor of its own,
    trained on the previous stage's boxes.

    Args:
        box_head: pooled RoIs ``[R, C, h, w]`` → features ``[R, F]``.
        box_predictor: features → (class logits ``[R, num_classes]``, deltas ``[R, 4]``).
        iou_thresh: its boxes at least this IoU with a ground truth are that class, the others
            background.
        bbox_reg_weights: its `BoxCoder` weights; the boxes it sees are closer to their objects
            than the stage before's, so its deltas are smaller and the weights larger (the
            paper's 10, 20, 30 for x, y).
    """

    def __init__(self, box_head: nn.Module, box_predictor: nn.Module, iou_thresh: float,
                 bbox_reg_weights: tuple[float, float, float, float]) -> None:
        super().__init__()
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.matcher = Matcher(iou_thresh, iou_thresh)
        self.box_coder = BoxCoder(tuple(bbox_reg_weights))

    def training_targets(self, boxes: Sequence[Tensor], targets: Sequence[Mapping[str, Tensor]]
                         ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: labels of ``boxes`` (0: background) and their regression targets."""
        labels, matched = [], []
        for image_boxes, target in zip(boxes, targets, strict=True):
            image_labels, image_matched = match_boxes(image_boxes, target, self.matcher)
            labels.append(image_labels)
            matched.append(image_matched)
        return labels, self.box_coder.encode(matched, list(boxes))


class RoIHeads(nn.Module):
    """Box branch of Faster R-CNN: pooler → box head → predictor, with sampling and losses;
    with ``cascade`` stages, Cascade R-CNN's box branch."""

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_head: nn.Module,
        box_predictor: nn.Module,
        *,
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.5,
        bg_iou_low: float = 0.0,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        soft_nms: Literal["none", "linear", "gaussian"] = "none",
        soft_nms_sigma: float = 0.5,
        cascade: Sequence[CascadeStage] = (),
    ) -> None:
        super().__init__()
        self.box_roi_pool = box_roi_pool
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh)
        self.bg_iou_low = bg_iou_low
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder(tuple(bbox_reg_weights))
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        if soft_nms not in ("none", *SOFT_NMS_METHODS):
            raise ValueError(f"soft_nms must be 'none' or one of {SOFT_NMS_METHODS}, got {soft_nms!r}")
        self.soft_nms, self.soft_nms_sigma = soft_nms, soft_nms_sigma
        self.cascade = nn.ModuleList(cascade)  # empty: no state-dict keys, torchvision's layout

    def forward(
        self,
        features: Mapping[str, Tensor],
        proposals: Sequence[Tensor],
        image_sizes: Sequence[tuple[int, int]],
        targets: Sequence[Mapping[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Detections per image (eval) or an empty list and the loss dict (training)."""
        if self.training:
            if targets is None:
                raise ValueError("the RoI heads need targets in training mode")
            proposals, labels, regression_targets = self.select_training_samples(proposals, targets)
        logits, deltas = self.box_predictor(self.box_head(
            self._pool(features, proposals, image_sizes)))
        losses, probabilities = {}, []
        if self.training:
            losses["loss_classifier"], losses["loss_box_reg"] = fastrcnn_loss(
                logits, deltas, labels, regression_targets)
        elif self.cascade:
            probabilities.append(F.softmax(logits, -1))
        box_coder = self.box_coder
        for number, stage in enumerate(self.cascade, start=2):
            proposals = refined_boxes(logits, deltas, proposals, image_sizes, box_coder)
            box_coder = stage.box_coder
            logits, deltas = stage.box_predictor(stage.box_head(
                self._pool(features, proposals, image_sizes)))
            if self.training:
                labels, regression_targets = stage.training_targets(proposals, targets)
                (losses[f"loss_classifier_stage{number}"],
                 losses[f"loss_box_reg_stage{number}"]) = fastrcnn_loss(
                    logits, deltas, labels, regression_targets)
            else:
                probabilities.append(F.softmax(logits, -1))
        if self.training:
            return [], losses
        if probabilities:  # the stages' mean probability, as logits that softmax gives back
            logits = torch.stack(probabilities).mean(0).log()
        boxes, scores, labels = postprocess_detections(
            logits, deltas, proposals, image_sizes, box_coder=box_coder,
            score_thresh=self.score_thresh, nms_thresh=self.nms_thresh,
            detections_per_img=self.detections_per_img, soft_nms=self.soft_nms,
            soft_nms_sigma=self.soft_nms_sigma)
        return [{"boxes": b, "labels": lab, "scores": s}
                for b, s, lab in zip(boxes, scores, labels, strict=True)], {}

    def _pool(self, features: Mapping[str, Tensor], boxes: Sequence[Tensor],
              image_sizes: Sequence[tuple[int, int]]) -> Tensor:
        """Pooled ``[sum R_i, C, h, w]`` features; in a cascade's training the gradient back
        through them is scaled by 1 / stages, so the backbone gets one stage's worth."""
        pooled = self.box_roi_pool(features, boxes, image_sizes)
        if self.training and self.cascade:
            share = 1.0 / (1 + len(self.cascade))
            pooled = pooled * share + pooled.detach() * (1.0 - share)
        return pooled

    def select_training_samples(
        self, proposals: Sequence[Tensor], targets: Sequence[Mapping[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Sampled proposals (ground truth added), their labels and regression targets."""
        sampled_boxes, sampled_labels, matched_boxes = [], [], []
        for image_proposals, target in zip(proposals, targets, strict=True):
            candidates, labels, matched = label_proposals(image_proposals, target, self.matcher,
                                                          self.bg_iou_low)
            sampled_boxes.append(candidates)
            sampled_labels.append(labels)
            matched_boxes.append(matched)
        pos, neg = self.sampler(sampled_labels)
        for i, (p, n) in enumerate(zip(pos, neg, strict=True)):
            keep = torch.where(p | n)[0]
            sampled_boxes[i], sampled_labels[i] = sampled_boxes[i][keep], sampled_labels[i][keep]
            matched_boxes[i] = matched_boxes[i][keep]
        targets_deltas = self.box_coder.encode(matched_boxes, sampled_boxes)
        return sampled_boxes, sampled_labels, list(targets_deltas)


def label_proposals(proposals: Tensor, target: Mapping[str, Tensor], matcher: Matcher,
                    bg_iou_low: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """(candidates: proposals + ground truth, their labels, the ground-truth box each matches);
    labels as `match_boxes`."""
    candidates = torch.cat((proposals, target["boxes"].to(proposals.dtype)))
    labels, matched = match_boxes(candidates, target, matcher, bg_iou_low)
    return candidates, labels, matched


def match_boxes(boxes: Tensor, target: Mapping[str, Tensor], matcher: Matcher,
                bg_iou_low: float = 0.0) -> tuple[Tensor, Tensor]:
    """(labels of ``boxes``, the ground-truth box each matches).

    Labels: the matched class for IoU >= the matcher's high threshold, 0 (background) below its
    low one, -1 (not sampled) in between and, when the image has objects, below ``bg_iou_low``.
    """
    gt = target["boxes"].to(boxes.dtype)
    if not gt.numel():
        return torch.zeros(len(boxes), dtype=torch.int64, device=boxes.device), torch.zeros_like(boxes)
    iou = box_iou(gt, boxes)
    idx = matcher(iou)
    labels = target["labels"][idx.clamp(min=0)]
    labels = torch.where(idx == Matcher.BELOW_LOW_THRESHOLD, 0, labels)
    labels = torch.where(idx == Matcher.BETWEEN_THRESHOLDS, -1, labels)
    if bg_iou_low > 0:
        labels = torch.where(iou.max(0).values < bg_iou_low, -1, labels)
    return labels, gt[idx.clamp(min=0)]


def refined_boxes(class_logits: Tensor, box_regression: Tensor, proposals: Sequence[Tensor],
                  image_sizes: Sequence[tuple[int, int]], box_coder: BoxCoder) -> list[Tensor]:
    """Per image: ``proposals`` moved by their deltas (class-specific: the most likely object
    class's), clipped to the image, without gradient; the next cascade stage's boxes."""
    counts = [p.shape[0] for p in proposals]
    boxes = box_coder.decode(box_regression.detach(), list(proposals))  # [R, 1 or K+1, 4]
    if boxes.shape[1] > 1:
        best = class_logits.detach()[:, 1:].argmax(1) + 1  # [R]
        boxes = boxes.gather(1, best[:, None, None].expand(-1, 1, 4))
    boxes = boxes[:, 0]  # [R, 4]
    return [clip_boxes_to_image(b, size)
            for b, size in zip(boxes.split(counts, 0), image_sizes, strict=True)]


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
    soft_nms: Literal["none", "linear", "gaussian"] = "none",
    soft_nms_sigma: float = 0.5,
) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Per-image lists (boxes, scores, labels) of detections from RoI-head outputs.

    As torchvision's ``RoIHeads.postprocess_detections``: ``class_logits [R, num_classes]``
    (column 0 background, ``num_classes = K + 1``) and ``box_regression [R, 4 * num_classes]`` (or
    class-agnostic ``[R, 4]``) for per-image ``xyxy`` ``proposals``. Every (RoI, class >= 1) pair
    is a candidate: softmax score ``> score_thresh``, box decoded and clipped to its image's
    ``(height, width)``, sides ``>= min_size``, then per-class NMS at ``nms_thresh`` and the
    ``detections_per_img`` best. Labels come out as int64 in ``1..K``. ``soft_nms`` "linear" or
    "gaussian" (``soft_nms_sigma``) lowers overlapping candidates' scores instead
    (`batched_soft_nms`), down to `soft_nms_min_score`; the scores returned are the lowered ones.
    Traced (export), Soft-NMS is left out: its loop over picks does not trace, so the traced
    detector returns every candidate and the file's reader runs it
    (`visionkit.inference.export.apply_exported_soft_nms`).
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
        if soft_nms == "none":
            keep = batched_nms(boxes, scores, labels, nms_thresh)[:detections_per_img]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        elif not torch.jit.is_tracing():
            keep, scores = batched_soft_nms(
                boxes, scores, labels, method=soft_nms, sigma=soft_nms_sigma,
                iou_threshold=nms_thresh, score_threshold=soft_nms_min_score(score_thresh),
                max_kept=detections_per_img)
            boxes, labels = boxes[keep], labels[keep]
        all_boxes.append(boxes)
        all_scores.append(scores)
        all_labels.append(labels)
    return all_boxes, all_scores, all_labels
