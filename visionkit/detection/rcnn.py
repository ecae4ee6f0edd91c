"""R-CNN (Girshick et al. 2014): every proposal warped to the CNN's input and classified on its own.

Each proposal is dilated so that, once warped to ``warp_size`` squares, ``context_padding``
pixels of image context surround it (the paper's 16 px at 227), cropped and resized by bilinear
sampling (RoIAlign with pixel-aligned boxes; outside the image it reads the mean colour), then
the CNN's pooled features feed a softmax over K + 1 classes and class-specific box regression
(relative to the proposal, `visionkit.ops.BoxCoder`); per-class NMS gives the detections.

Call it as `visionkit.detection.FastRCNN`: ``model(images, proposals=None)`` in eval mode,
``model(images, targets, proposals)`` in training mode, which samples ``region_batch_size``
regions over the whole batch with ``positive_fraction`` positives (IoU >= 0.5; the paper's
32 positives / 96 backgrounds) and returns ``{"loss_classifier", "loss_box_reg"}``.
``num_classes = K + 1``. `RCNN.region_features` gives the CNN features of boxes, for
training the heads on cached features (`visionkit.detection.rcnn_heads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from visionkit.detection.proposals import ProposalGenerator, SelectiveSearch, proposal_inputs
from visionkit.detection.roi_heads import FastRCNNPredictor, label_proposals, postprocess_detections
from visionkit.detection.transform import normalize_image
from visionkit.models.backbone import IMAGENET_MEAN, IMAGENET_STD
from visionkit.ops import (
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    fastrcnn_loss,
    roi_align,
)


def context_boxes(boxes: Tensor, warp_size: int, padding: int) -> Tensor:
    """``boxes`` grown so that, warped to ``warp_size``, each spans [padding, warp_size - padding]."""
    inner = warp_size - 2 * padding
    if inner <= 0:
        raise ValueError(f"context_padding {padding} leaves nothing of a {warp_size} px warp")
    x1, y1, x2, y2 = boxes.unbind(1)
    dx = (x2 - x1) * (padding / inner)
    dy = (y2 - y1) * (padding / inner)
    return torch.stack((x1 - dx, y1 - dy, x2 + dx, y2 + dy), dim=1)


def warp_regions(image: Tensor, boxes: Tensor, warp_size: int, padding: int) -> Tensor:
    """``[R, C, warp_size, warp_size]`` crops of ``boxes`` (with context) from one ``[C, H, W]`` image."""
    return roi_align(image[None], [context_boxes(boxes, warp_size, padding)], warp_size,
                     spatial_scale=1.0, sampling_ratio=0, aligned=True)


class RCNN(nn.Module):
    """Region classifier over ``cnn``: any module mapping ``[B, 3, S, S]`` to ``[B, out_features]``.

    ``context_padding`` defaults to the paper's ratio, 16 px of a 224 px warp.

    ``num_classes`` counts the background: K object classes → ``num_classes = K + 1``.
    ``chunk_size`` regions go through the CNN at once at inference (memory bound).
    """

    predictor_prefix = "box_predictor."

    def __init__(
        self,
        cnn: nn.Module,
        num_classes: int,
        *,
        proposal_generator: ProposalGenerator | None = None,
        warp_size: int = 224,
        context_padding: int | None = None,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        max_proposals_train: int = 2000,
        max_proposals_test: int = 2000,
        chunk_size: int = 256,
        region_batch_size: int = 128,
        positive_fraction: float = 0.25,
        box_fg_iou_thresh: float = 0.5,
        box_bg_iou_thresh: float = 0.5,
        box_score_thresh: float = 0.05,
        box_nms_thresh: float = 0.3,
        box_detections_per_img: int = 100,
        bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.config = dict(config or {})  # create_detector's arguments (for checkpoints)
        self.proposal_generator = proposal_generator if proposal_generator is not None else SelectiveSearch()
        self.cnn = cnn
        self.box_predictor = FastRCNNPredictor(cnn.out_features, num_classes)
        self.warp_size = warp_size
        self.context_padding = (round(warp_size * 16 / 224) if context_padding is None
                                else context_padding)
        self.image_mean = [float(m) for m in image_mean]
        self.image_std = [float(s) for s in image_std]
        self.max_proposals = (max_proposals_train, max_proposals_test)
        self.chunk_size = chunk_size
        self.matcher = Matcher(box_fg_iou_thresh, box_bg_iou_thresh)
        self.sampler = BalancedPositiveNegativeSampler(region_batch_size, positive_fraction)
        self.box_coder = BoxCoder(tuple(bbox_reg_weights))
        self.score_thresh = box_score_thresh
        self.nms_thresh = box_nms_thresh
        self.detections_per_img = box_detections_per_img

    def region_features(self, images: Sequence[Tensor], boxes: Sequence[Tensor]) -> Tensor:
        """CNN features ``[sum R_i, out_features]`` of each image's boxes (0–1 float images)."""
        features = []
        for image, image_boxes in zip(images, boxes, strict=True):
            normalised = normalize_image(image, self.image_mean, self.image_std)
            for chunk in image_boxes.split(self.chunk_size):
                features.append(self.cnn(warp_regions(normalised, chunk, self.warp_size,
                                                      self.context_padding)))
        if not features:
            return images[0].new_zeros((0, self.box_predictor.cls_score.in_features))
        return torch.cat(features)

    def sample_regions(self, proposals: Sequence[Tensor], targets: Sequence[dict[str, Tensor]]
                       ) -> tuple[list[Tensor], Tensor, Tensor]:
        """Per-image sampled boxes (ground truth added), their labels and regression targets."""
        labelled = [label_proposals(p, t, self.matcher) for p, t in zip(proposals, targets, strict=True)]
        counts = [len(labels) for _, labels, _ in labelled]
        positive, negative = self.sampler([torch.cat([labels for _, labels, _ in labelled])])
        keep = (positive[0] | negative[0]).bool().split(counts)
        boxes = [c[k] for (c, _, _), k in zip(labelled, keep, strict=True)]
        labels = torch.cat([lab[k] for (_, lab, _), k in zip(labelled, keep, strict=True)])
        matched = torch.cat([m[k] for (_, _, m), k in zip(labelled, keep, strict=True)])
        return boxes, labels, self.box_coder.encode_single(matched, torch.cat(boxes))

    def forward(
        self,
        images: Sequence[Tensor],
        targets: Sequence[dict[str, Tensor]] | None = None,
        proposals: Sequence[Tensor] | None = None,
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Loss dict in training mode (targets required), per-image detections in eval mode."""
        targets, boxes = proposal_inputs(self, images, targets, proposals)
        if self.training:
            boxes, labels, regression_targets = self.sample_regions(boxes, targets)
            logits, deltas = self.box_predictor(self.region_features(images, boxes))
            loss_classifier, loss_box = fastrcnn_loss(logits, deltas, [labels], [regression_targets])
            return {"loss_classifier": loss_classifier, "loss_box_reg": loss_box}
        logits, deltas = self.box_predictor(self.region_features(images, boxes))
        sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        kept_boxes, scores, labels = postprocess_detections(
            logits, deltas, boxes, sizes, box_coder=self.box_coder, score_thresh=self.score_thresh,
            nms_thresh=self.nms_thresh, detections_per_img=self.detections_per_img)
        return [{"boxes": b, "labels": lab, "scores": s}
                for b, s, lab in zip(kept_boxes, scores, labels, strict=True)]
