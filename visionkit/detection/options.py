"""Every option of a detector, typed and with its default: one dataclass per family.

`create_detector(name, num_classes, **options)` checks ``options`` against the family's class
(`options_class`), and `visionkit detect fit` lists each field under ``--model.<section>``
(`section`: ``faster_rcnn``, ``fast_rcnn`` or ``rcnn``), so a YAML section maps one-to-one onto
these fields. Names and defaults are torchvision's where torchvision has the option. ``None``
means "the family's choice", said in each field's description.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from visionkit.errors import ConfigError

Sizes = int | list[int]


@dataclass
class ProposalOptions:
    """Selective search (`visionkit.detection.SelectiveSearch`) for R-CNN and Fast R-CNN.

    Args:
        mode: "recall" (6 strategies picked for recall), "fast" (the paper's 8) or "quality"
            (the paper's 80, many times slower).
        max_proposals: at most this many boxes per image.
        max_side: images with a longer side are searched at this side; null: full size.
        sigma: Gaussian smoothing before segmentation.
        seed: seeds the ranking; the same image and settings give the same boxes.
    """

    mode: Literal["recall", "fast", "quality"] = "recall"
    max_proposals: int = 2000
    max_side: int | None = 500
    sigma: float = 0.8
    seed: int = 0


@dataclass
class FasterRCNNOptions:
    """Faster R-CNN (``fasterrcnn_*``): backbone, image transform, RPN and box head.

    Args:
        trainable_backbone_layers: backbone stages that train, counted from the top; null: 3
            with pretrained weights, else all.
        frozen_bn: BatchNorm with fixed statistics in the backbone; null: on with pretrained
            weights, off from scratch.
        returned_layers: backbone stages the FPN reads; null: the family's (ResNet 1-4,
            EfficientNet-Lite 2, 4, 6, MobileNet the last two).
        fpn_channels: FPN width; null: 256.
        anchor_sizes: anchor sizes per feature level (flat: one per level); null: the family's
            (FPN: 8x (ResNet) or 4x and 8x (EfficientNet-Lite) each level's stride; single level
            128-512).
        aspect_ratios: anchor height/width ratios per level (flat: the same at every level);
            null: 0.5, 1, 2.
        roi_pool: "align" (MultiScaleRoIAlign) or, single-level backbones only, "pool".
        min_size: shorter side after resizing (a list: one drawn per training image).
        max_size: longer side at most.
        image_mean: normalisation mean; null: the backbone's (ImageNet's, or [-1, 1] scaling for
            EfficientNet-Lite).
        image_std: normalisation std; null: the backbone's.
        size_divisible: padded batch sides are multiples of this.
        fixed_size: resize every image to (width, height) instead; null: keep the aspect ratio.
        rpn_pre_nms_top_n_train: proposals per level before NMS, training.
        rpn_pre_nms_top_n_test: proposals per level before NMS, evaluation.
        rpn_post_nms_top_n_train: proposals per image after NMS, training.
        rpn_post_nms_top_n_test: proposals per image after NMS, evaluation.
        rpn_nms_thresh: RPN NMS IoU threshold.
        rpn_fg_iou_thresh: anchors at least this IoU with a box are objects.
        rpn_bg_iou_thresh: anchors below this IoU with every box are background.
        rpn_batch_size_per_image: anchors sampled per image for the RPN loss.
        rpn_positive_fraction: share of objects among them.
        rpn_score_thresh: proposals below this objectness are dropped; null: 0.05 for MobileNet
            (torchvision's), else 0.
        representation_size: width of the two-layer box head.
        box_score_thresh: detections below this score are dropped (with Soft-NMS: candidates;
            the scores it lowers are kept down to 0.001).
        box_nms_thresh: per-class NMS IoU threshold of the detections.
        box_detections_per_img: detections kept per image.
        box_fg_iou_thresh: proposals at least this IoU with a box are that class.
        box_bg_iou_thresh: proposals below this IoU with every box are background.
        box_batch_size_per_image: proposals sampled per image for the box loss.
        box_positive_fraction: share of objects among them.
        bbox_reg_weights: BoxCoder weights (x, y, w, h) of the box head.
        box_soft_nms: "none" (hard NMS at box_nms_thresh, torchvision's), or Soft-NMS, which
            lowers an overlapping detection's score instead of dropping it: "gaussian" (by
            exp(-IoU^2 / box_soft_nms_sigma)) or "linear" (by 1 - IoU above box_nms_thresh).
            For crowded scenes; inference only (training is the same).
        box_soft_nms_sigma: the gaussian's width.
        box_cascade_iou: Cascade R-CNN: one refinement stage after the box head per IoU
            threshold (the paper's [0.6, 0.7]), each trained on the boxes the stage before
            regressed, positives at its threshold; tighter boxes (higher AP at IoU 0.75) for
            about one box head's compute per stage. Empty: Faster R-CNN.
    """

    trainable_backbone_layers: int | None = None
    frozen_bn: bool | None = None
    returned_layers: list[int] | None = None
    fpn_channels: int | None = None
    anchor_sizes: list[list[int]] | list[int] | None = None
    aspect_ratios: list[list[float]] | list[float] | None = None
    roi_pool: Literal["align", "pool"] = "align"
    min_size: Sizes = 800
    max_size: int = 1333
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    size_divisible: int = 32
    fixed_size: tuple[int, int] | None = None
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_score_thresh: float | None = None
    representation_size: int = 1024
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    box_soft_nms: Literal["none", "linear", "gaussian"] = "none"
    box_soft_nms_sigma: float = 0.5
    box_cascade_iou: list[float] = field(default_factory=list)


@dataclass
class FastRCNNOptions:
    """Fast R-CNN (``fast_rcnn_*``): selective-search proposals, RoI pooling, two FC layers.

    Args:
        trainable_backbone_layers: backbone stages that train, counted from the top; null: 3
            with pretrained weights, else all.
        frozen_bn: BatchNorm with fixed statistics (ResNet backbones); null: on with pretrained
            weights.
        proposals: the selective search that proposes regions.
        min_size: shorter side after resizing (a list: one drawn per training image).
        max_size: longer side at most.
        image_mean: normalisation mean; null: ImageNet's.
        image_std: normalisation std; null: ImageNet's.
        size_divisible: padded batch sides are multiples of this.
        roi_pool: "pool" (RoIPool, the paper) or "align" (RoIAlign).
        roi_output_size: pooled grid side.
        representation_size: width of the two FC layers.
        max_proposals_train: proposals per image used in training.
        max_proposals_test: proposals per image used in evaluation.
        box_score_thresh: detections below this score are dropped (with Soft-NMS: candidates;
            the scores it lowers are kept down to 0.001).
        box_nms_thresh: per-class NMS IoU threshold of the detections.
        box_detections_per_img: detections kept per image.
        box_fg_iou_thresh: proposals at least this IoU with a box are that class.
        box_bg_iou_thresh: proposals below this IoU with every box are background...
        box_bg_iou_low: ...if at least this IoU (the paper's [0.1, 0.5) background range).
        box_batch_size_per_image: RoIs sampled per image for the loss.
        box_positive_fraction: share of objects among them.
        bbox_reg_weights: BoxCoder weights (x, y, w, h).
        box_soft_nms: "none" (hard NMS at box_nms_thresh, torchvision's), or Soft-NMS, which
            lowers an overlapping detection's score instead of dropping it: "gaussian" (by
            exp(-IoU^2 / box_soft_nms_sigma)) or "linear" (by 1 - IoU above box_nms_thresh).
            For crowded scenes; inference only (training is the same).
        box_soft_nms_sigma: the gaussian's width.
    """

    trainable_backbone_layers: int | None = None
    frozen_bn: bool | None = None
    proposals: ProposalOptions = field(default_factory=ProposalOptions)
    min_size: Sizes = 600
    max_size: int = 1000
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    size_divisible: int = 32
    roi_pool: Literal["pool", "align"] = "pool"
    roi_output_size: int = 7
    representation_size: int = 1024
    max_proposals_train: int = 2000
    max_proposals_test: int = 2000
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.3
    box_detections_per_img: int = 100
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_bg_iou_low: float = 0.1
    box_batch_size_per_image: int = 64
    box_positive_fraction: float = 0.25
    bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    box_soft_nms: Literal["none", "linear", "gaussian"] = "none"
    box_soft_nms_sigma: float = 0.5


@dataclass
class RCNNOptions:
    """R-CNN (``rcnn_*``): the whole classification network on each warped proposal.

    Args:
        trainable_backbone_layers: layer groups that train, counted from the top; null: 3 with
            pretrained weights, else all.
        frozen_bn: unused by R-CNN (kept so every family has it); null.
        proposals: the selective search that proposes regions.
        warp_size: side of the warped region; null: the network's input size.
        context_padding: pixels of context around each region at warp size; null: 16/224 of it.
        image_mean: normalisation mean; null: the network's.
        image_std: normalisation std; null: the network's.
        max_proposals_train: proposals per image used in training.
        max_proposals_test: proposals per image used in evaluation.
        chunk_size: regions per forward pass of the network.
        region_batch_size: regions per training mini-batch.
        positive_fraction: share of object regions in a mini-batch.
        box_fg_iou_thresh: regions at least this IoU with a box are that class.
        box_bg_iou_thresh: regions below this IoU with every box are background.
        box_score_thresh: detections below this score are dropped.
        box_nms_thresh: per-class NMS IoU threshold of the detections.
        box_detections_per_img: detections kept per image.
        bbox_reg_weights: BoxCoder weights (x, y, w, h).
    """

    trainable_backbone_layers: int | None = None
    frozen_bn: bool | None = None
    proposals: ProposalOptions = field(default_factory=ProposalOptions)
    warp_size: int | None = None
    context_padding: int | None = None
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    max_proposals_train: int = 2000
    max_proposals_test: int = 2000
    chunk_size: int = 256
    region_batch_size: int = 128
    positive_fraction: float = 0.25
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.3
    box_detections_per_img: int = 100
    bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)


DetectorOptions = FasterRCNNOptions | FastRCNNOptions | RCNNOptions
SECTIONS: dict[str, type] = {"faster_rcnn": FasterRCNNOptions, "fast_rcnn": FastRCNNOptions,
                             "rcnn": RCNNOptions}


def section(name: str) -> str:
    """The options section of detector ``name``: "faster_rcnn", "fast_rcnn" or "rcnn"."""
    if name.startswith("fasterrcnn_"):
        return "faster_rcnn"
    return "fast_rcnn" if name.startswith("fast_rcnn_") else "rcnn"


def options_class(name: str) -> type:
    """`FasterRCNNOptions`, `FastRCNNOptions` or `RCNNOptions`, by the detector's name."""
    return SECTIONS[section(name)]


def option_names(name: str) -> list[str]:
    """Every option detector ``name`` takes, sorted."""
    return sorted(f.name for f in fields(options_class(name)))


def make_options(name: str, base: DetectorOptions | dict[str, Any] | None = None,
                 **values: Any) -> DetectorOptions:
    """The options of detector ``name``: ``base`` (an instance, a dict of fields, or the
    defaults) with ``values`` replacing fields; `ConfigError` names any unknown option."""
    return _options(options_class(name), base, values, name)


def section_options(key: str, base: DetectorOptions | dict[str, Any] | None) -> DetectorOptions:
    """The options of section ``key`` ("faster_rcnn", ...) from an instance, a dict or None."""
    return _options(SECTIONS[key], base, {}, f"model.{key}")


def _options(cls: type, base: DetectorOptions | dict[str, Any] | None, values: dict[str, Any],
             owner: str) -> DetectorOptions:
    if isinstance(base, dict):
        values = {**base, **values}
        base = None
    if base is not None and not isinstance(base, cls):
        raise ConfigError(f"{owner} takes {cls.__name__}, got {type(base).__name__}")
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown options {unknown} for {owner}; known: {', '.join(known)}")
    if isinstance(values.get("proposals"), dict):
        try:
            values["proposals"] = ProposalOptions(**values["proposals"])
        except TypeError as err:
            raise ConfigError(f"proposals: {err}") from err
    return replace(base if base is not None else cls(), **values)


def constructor_arguments(model_class: type, options: DetectorOptions) -> dict[str, Any]:
    """The fields of ``options`` that ``model_class``'s constructor takes, by name (the others,
    such as the backbone's and the anchors', are the builder's to use)."""
    taken = inspect.signature(model_class).parameters
    return {f.name: getattr(options, f.name) for f in fields(options) if f.name in taken}


def options_dict(options: DetectorOptions) -> dict[str, Any]:
    """Plain fields (nested proposals as a dict, tuples as lists) for checkpoints and reports."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()}


def detector_config(name: str, num_classes: int, options: DetectorOptions) -> dict[str, Any]:
    """The arguments that rebuild a detector, ``create_detector(**config)``: kept in checkpoints."""
    return {"name": name, "num_classes": num_classes, **options_dict(options)}
