"""Fast R-CNN (Girshick 2015): the whole image through the backbone once, then RoI heads on proposals.

Call ``model(images, proposals=None)`` in eval mode with a list of float ``[3, H, W]`` tensors
in 0–1: one dict per image, ``{"boxes" xyxy [D, 4] in that image's pixels, "labels" int64 [D] in
1..K, "scores" [D]}``. ``proposals`` (one ``[P, 4]`` xyxy tensor per image, in its pixels, best
first) come from the caller or, when omitted, from ``proposal_generator`` (selective search by
default). Training mode: ``model(images, targets, proposals)`` with targets as for
`visionkit.detection.FasterRCNN`; returns ``{"loss_classifier", "loss_box_reg"}`` (the
multi-task loss: softmax cross-entropy + class-specific smooth L1). ``num_classes = K + 1``.

Defaults follow the paper: RoIPool 7x7 on a stride-16 map, two FC layers, mini-batches of 64
RoIs per image with 25 % foreground (IoU >= 0.5) and background in [0.1, 0.5), test NMS 0.3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from torch import Tensor, nn

from visionkit.detection.proposals import ProposalGenerator, SelectiveSearch, proposal_inputs
from visionkit.detection.roi_heads import FastRCNNPredictor, RoIHeads, RoIPool, TwoMLPHead
from visionkit.detection.transform import DetectionTransform, image_size, resize_boxes
from visionkit.models.backbone import IMAGENET_MEAN, IMAGENET_STD
from visionkit.ops import MultiScaleRoIAlign


class FastRCNN(nn.Module):
    """Proposal-based detector over a backbone returning one feature map ``"0"`` with ``out_channels``.

    ``num_classes`` counts the background: K object classes → ``num_classes = K + 1``.
    ``roi_pool``: "pool" (RoIPool, max per bin) or "align" (RoIAlign, 2 samples per bin side).
    """

    predictor_prefix = "roi_heads.box_predictor."

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        proposal_generator: ProposalGenerator | None = None,
        min_size: int | Sequence[int] = 600,
        max_size: int = 1000,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        size_divisible: int = 32,
        roi_pool: Literal["pool", "align"] = "pool",
        roi_output_size: int = 7,
        representation_size: int = 1024,
        max_proposals_train: int = 2000,
        max_proposals_test: int = 2000,
        box_score_thresh: float = 0.05,
        box_nms_thresh: float = 0.3,
        box_detections_per_img: int = 100,
        box_fg_iou_thresh: float = 0.5,
        box_bg_iou_thresh: float = 0.5,
        box_bg_iou_low: float = 0.1,
        box_batch_size_per_image: int = 64,
        box_positive_fraction: float = 0.25,
        bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        box_soft_nms: Literal["none", "linear", "gaussian"] = "none",
        box_soft_nms_sigma: float = 0.5,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if roi_pool not in ("pool", "align"):
            raise ValueError(f"roi_pool must be 'pool' or 'align', got {roi_pool!r}")
        self.num_classes = num_classes
        self.config = dict(config or {})  # create_detector's arguments (for checkpoints)
        self.proposal_generator = proposal_generator if proposal_generator is not None else SelectiveSearch()
        self.max_proposals = (max_proposals_train, max_proposals_test)
        self.transform = DetectionTransform(min_size, max_size, image_mean, image_std, size_divisible)
        self.backbone = backbone
        pooler = (RoIPool("0", roi_output_size) if roi_pool == "pool" else
                  MultiScaleRoIAlign(["0"], output_size=roi_output_size, sampling_ratio=2))
        self.roi_heads = RoIHeads(
            pooler, TwoMLPHead(backbone.out_channels * roi_output_size ** 2, representation_size),
            FastRCNNPredictor(representation_size, num_classes),
            fg_iou_thresh=box_fg_iou_thresh, bg_iou_thresh=box_bg_iou_thresh,
            bg_iou_low=box_bg_iou_low, batch_size_per_image=box_batch_size_per_image,
            positive_fraction=box_positive_fraction, bbox_reg_weights=bbox_reg_weights,
            score_thresh=box_score_thresh, nms_thresh=box_nms_thresh,
            detections_per_img=box_detections_per_img, soft_nms=box_soft_nms,
            soft_nms_sigma=box_soft_nms_sigma)

    def forward(
        self,
        images: Sequence[Tensor],
        targets: Sequence[dict[str, Tensor]] | None = None,
        proposals: Sequence[Tensor] | None = None,
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Loss dict in training mode (targets required), per-image detections in eval mode."""
        targets, boxes = proposal_inputs(self, images, targets, proposals)
        original_sizes = [image_size(img) for img in images]
        batch, sizes, targets = self.transform(images, targets)
        boxes = [resize_boxes(b, old, new) for b, old, new in zip(boxes, original_sizes, sizes, strict=True)]
        detections, losses = self.roi_heads(self.backbone(batch), boxes, sizes, targets)
        if self.training:
            return losses
        return self.transform.postprocess(detections, sizes, original_sizes)
