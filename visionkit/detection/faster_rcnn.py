"""Faster R-CNN (Ren et al. 2015): transform → backbone → RPN → RoI heads → boxes in image pixels.

Call ``model(images)`` in eval mode with a list of float ``[3, H, W]`` tensors in 0–1 (any
sizes): one dict per image, ``{"boxes" xyxy [D, 4] in that image's pixels, "labels" int64 [D]
in 1..K, "scores" [D]}``. In training mode call ``model(images, targets)`` with one target per
image, ``{"boxes" xyxy float [N, 4], "labels" int64 [N] in 1..K, "iscrowd" (optional)}``; it
returns ``{"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}``.
Boxes with ``iscrowd=1`` are left out of training. ``num_classes = K + 1`` (0 is background).
Options and defaults are torchvision's ``FasterRCNN``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from typing import Any, Literal

from torch import Tensor, nn

from visionkit.detection.roi_heads import CascadeStage, FastRCNNPredictor, RoIHeads, TwoMLPHead
from visionkit.detection.rpn import RegionProposalNetwork, RPNHead
from visionkit.detection.targets import training_targets
from visionkit.detection.transform import DetectionTransform, image_size
from visionkit.models.backbone import IMAGENET_MEAN, IMAGENET_STD
from visionkit.ops import AnchorGenerator, MultiScaleRoIAlign


class FasterRCNN(nn.Module):
    """Two-stage detector over any backbone returning named feature maps with ``out_channels``.

    ``num_classes`` counts the background: K object classes → ``num_classes = K + 1``. The
    anchor generator, RPN head, RoI pooler, box head and predictor default to torchvision's
    choices (5-level FPN anchors 32–512, MultiScaleRoIAlign 7x7 over ``featmap_names``,
    TwoMLPHead of ``representation_size``); pass modules to replace them. ``box_cascade_iou``
    adds Cascade R-CNN stages after the box head, one per IoU threshold (the paper's 0.6, 0.7),
    each a fresh copy of the box head with a class-agnostic predictor of ``representation_size``
    inputs, its coder weights ``bbox_reg_weights`` times the stage's number (2, 3...).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        min_size: int | Sequence[int] = 800,
        max_size: int = 1333,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        size_divisible: int = 32,
        fixed_size: tuple[int, int] | None = None,
        anchor_generator: AnchorGenerator | None = None,
        rpn_head: nn.Module | None = None,
        rpn_pre_nms_top_n_train: int = 2000,
        rpn_pre_nms_top_n_test: int = 1000,
        rpn_post_nms_top_n_train: int = 2000,
        rpn_post_nms_top_n_test: int = 1000,
        rpn_nms_thresh: float = 0.7,
        rpn_fg_iou_thresh: float = 0.7,
        rpn_bg_iou_thresh: float = 0.3,
        rpn_batch_size_per_image: int = 256,
        rpn_positive_fraction: float = 0.5,
        rpn_score_thresh: float = 0.0,
        box_roi_pool: nn.Module | None = None,
        box_head: nn.Module | None = None,
        box_predictor: nn.Module | None = None,
        representation_size: int = 1024,
        box_score_thresh: float = 0.05,
        box_nms_thresh: float = 0.5,
        box_detections_per_img: int = 100,
        box_fg_iou_thresh: float = 0.5,
        box_bg_iou_thresh: float = 0.5,
        box_batch_size_per_image: int = 512,
        box_positive_fraction: float = 0.25,
        bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        box_soft_nms: Literal["none", "linear", "gaussian"] = "none",
        box_soft_nms_sigma: float = 0.5,
        box_cascade_iou: Sequence[float] = (),
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.config = dict(config or {})  # create_detector's arguments (for checkpoints)
        self.transform = DetectionTransform(min_size, max_size, image_mean, image_std,
                                            size_divisible, fixed_size)
        self.backbone = backbone
        channels = backbone.out_channels
        if anchor_generator is None:
            anchor_generator = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)),
                                               ((0.5, 1.0, 2.0),) * 5)
        if rpn_head is None:
            rpn_head = RPNHead(channels, anchor_generator.num_anchors_per_location()[0])
        self.rpn = RegionProposalNetwork(
            anchor_generator, rpn_head, fg_iou_thresh=rpn_fg_iou_thresh,
            bg_iou_thresh=rpn_bg_iou_thresh, batch_size_per_image=rpn_batch_size_per_image,
            positive_fraction=rpn_positive_fraction,
            pre_nms_top_n=(rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test),
            post_nms_top_n=(rpn_post_nms_top_n_train, rpn_post_nms_top_n_test),
            nms_thresh=rpn_nms_thresh, score_thresh=rpn_score_thresh)
        if box_roi_pool is None:
            box_roi_pool = MultiScaleRoIAlign(getattr(backbone, "featmap_names", ["0", "1", "2", "3"]),
                                              output_size=7, sampling_ratio=2)
        if box_head is None:
            box_head = TwoMLPHead(channels * 7 * 7, representation_size)
        if box_predictor is None:
            box_predictor = FastRCNNPredictor(representation_size, num_classes)
        self.roi_heads = RoIHeads(
            box_roi_pool, box_head, box_predictor, fg_iou_thresh=box_fg_iou_thresh,
            bg_iou_thresh=box_bg_iou_thresh, batch_size_per_image=box_batch_size_per_image,
            positive_fraction=box_positive_fraction, bbox_reg_weights=bbox_reg_weights,
            score_thresh=box_score_thresh, nms_thresh=box_nms_thresh,
            detections_per_img=box_detections_per_img, soft_nms=box_soft_nms,
            soft_nms_sigma=box_soft_nms_sigma,
            cascade=[CascadeStage(fresh_copy(box_head),
                                  FastRCNNPredictor(representation_size, num_classes, class_agnostic=True),
                                  iou, tuple(w * stage for w in bbox_reg_weights))
                     for stage, iou in enumerate(box_cascade_iou, start=2)])

    def forward(
        self, images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Loss dict in training mode (targets required), per-image detections in eval mode."""
        if self.training:
            targets = training_targets(targets, "FasterRCNN")
        original_sizes = [image_size(img) for img in images]
        batch, sizes, targets = self.transform(images, targets if self.training else None)
        features = self.backbone(batch)
        proposals, rpn_losses = self.rpn(batch, sizes, features, targets)
        detections, head_losses = self.roi_heads(features, proposals, sizes, targets)
        if self.training:
            return {**rpn_losses, **head_losses}
        return self.transform.postprocess(detections, sizes, original_sizes)


def fresh_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its parameters drawn afresh (``reset_parameters`` of each layer)."""
    copy = deepcopy(module)
    for layer in copy.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return copy
