"""`create_detector`: Faster R-CNN models by name, with torchvision's option names and weights.

Names (R-CNN and Fast R-CNN ones come from `visionkit.detection.proposal_builders`):
``fasterrcnn_resnet50_fpn`` and ``fasterrcnn_mobilenet_v3_large_fpn`` (torchvision's
architectures; their COCO state dicts load), ``fasterrcnn_resnet18_fpn`` and
``fasterrcnn_vgg16`` (single stride-16 level, the original paper's layout) for small data,
and ``fasterrcnn_efficientnet_lite0_fpn`` (EfficientNet-Lite0, whose ImageNet weights install
with visionkit: ``pretrained_backbone="imagenet"`` works offline) for small real datasets.

Weights: ``pretrained="coco"`` takes torchvision's COCO file (``weights/``, $VISIONKIT_WEIGHTS
and TORCH_HOME are searched before any download; ``VISIONKIT_OFFLINE=1`` never downloads),
``pretrained=PATH`` a torchvision Faster R-CNN state dict or a visionkit detection checkpoint.
When ``num_classes`` differs from the file's, only the box predictor starts fresh (the usual
fine-tuning recipe). ``pretrained_backbone="imagenet"|PATH`` loads classification weights into
the backbone only. A request that cannot be met raises `WeightsError`, never a random init.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from torch import nn

from visionkit.detection.backbones import (
    FrozenBatchNorm2d,
    efficientnet_lite_fpn_backbone,
    load_classification_weights,
    mobilenet_fpn_backbone,
    resnet_fpn_backbone,
    single_level_backbone,
)
from visionkit.detection.fast_rcnn import FastRCNN
from visionkit.detection.faster_rcnn import FasterRCNN
from visionkit.detection.options import (
    DetectorOptions,
    FasterRCNNOptions,
    constructor_arguments,
    detector_config,
    make_options,
    option_names,
)
from visionkit.detection.proposal_builders import PROPOSAL_DETECTORS, create_proposal_detector
from visionkit.detection.rcnn import RCNN
from visionkit.detection.roi_heads import RoIPool
from visionkit.detection.weights import classification_weights, existing_file, load_detector_weights
from visionkit.errors import ConfigError, WeightsError
from visionkit.models.backbone import IMAGENET_MEAN, IMAGENET_STD
from visionkit.models.efficientnet_lite import MEAN as LITE_MEAN
from visionkit.models.efficientnet_lite import STD as LITE_STD
from visionkit.models.efficientnet_lite import TF_BATCH_NORM
from visionkit.models.weights import fetch_url_weights, load_state_dict_file, torchvision_weights_url
from visionkit.ops import AnchorGenerator

LITE_STAGE_STRIDES = (2, 4, 8, 16, 16, 32, 32)  # output stride of EfficientNet-Lite's 7 stages


@dataclass(frozen=True)
class DetectorSpec:
    """How to build one named Faster R-CNN: its backbone and the choices that differ by family."""

    family: str  # "resnet_fpn", "mobilenet_fpn", "efficientnet_fpn" or "single_level"
    arch: str  # torchvision classification architecture of the backbone
    max_trainable: int  # backbone stages that can train
    coco_weights: str | None = None  # torchvision detection model whose COCO weights fit
    image_mean: tuple[float, ...] = IMAGENET_MEAN  # what the backbone's weights expect
    image_std: tuple[float, ...] = IMAGENET_STD
    rpn_score_thresh: float = 0.0

    @property
    def classification_prefix(self) -> str:
        """Prefix of the backbone body's keys in the classification state dict."""
        return "" if self.family in ("resnet_fpn", "efficientnet_fpn") else "features."


DETECTORS: dict[str, DetectorSpec] = {
    "fasterrcnn_resnet50_fpn": DetectorSpec("resnet_fpn", "resnet50", 5, "fasterrcnn_resnet50_fpn"),
    "fasterrcnn_resnet18_fpn": DetectorSpec("resnet_fpn", "resnet18", 5),
    "fasterrcnn_mobilenet_v3_large_fpn": DetectorSpec(
        "mobilenet_fpn", "mobilenet_v3_large", 6, "fasterrcnn_mobilenet_v3_large_fpn",
        rpn_score_thresh=0.05),
    "fasterrcnn_vgg16": DetectorSpec("single_level", "vgg16", 5),
    # inputs scaled to [-1, 1], as the ImageNet weights expect (TensorFlow's preprocessing)
    "fasterrcnn_efficientnet_lite0_fpn": DetectorSpec(
        "efficientnet_fpn", "efficientnet_lite0", 5, image_mean=LITE_MEAN, image_std=LITE_STD),
}


def list_detectors() -> list[str]:
    """Names accepted by `create_detector`, sorted."""
    return sorted([*DETECTORS, *PROPOSAL_DETECTORS])


def require_known(name: str) -> None:
    """Raise `ConfigError` listing the known detectors unless ``name`` is one."""
    if name not in DETECTORS and name not in PROPOSAL_DETECTORS:
        raise ConfigError(f"unknown detector {name!r}; known: {', '.join(list_detectors())}")


def detector_options(name: str = "fasterrcnn_resnet18_fpn") -> list[str]:
    """Every keyword option `create_detector` accepts for ``name`` (the fields of its options class)."""
    return option_names(name)


def create_detector(
    name: str,
    num_classes: int,
    *,
    pretrained: str | os.PathLike | None = None,
    pretrained_backbone: str | os.PathLike | None = None,
    options: DetectorOptions | None = None,
    **values: Any,
) -> FasterRCNN | FastRCNN | RCNN:
    """Build detector ``name`` for ``num_classes = K + 1`` classes (K objects + background 0).

    Args:
        name: one of `list_detectors()`.
        num_classes: K object classes + 1 (background is label 0).
        pretrained: None, "coco" or a path (see the module docstring).
        pretrained_backbone: None, "imagenet" or a path to classification weights.
        options: the family's typed options (`FasterRCNNOptions`, `FastRCNNOptions`,
            `RCNNOptions` in `visionkit.detection.options`); default: their defaults.
        values: fields of those options to replace (``min_size=416``, ``box_score_thresh=0.3``,
            ...); `detector_options(name)` lists them.
    """
    require_known(name)
    if num_classes < 2:
        raise ConfigError(f"num_classes counts the background: K classes need K + 1, got {num_classes}")
    if pretrained is not None and pretrained_backbone is not None:
        raise ConfigError("pass pretrained (whole detector) or pretrained_backbone, not both")
    chosen = make_options(name, options, **values)
    if name in PROPOSAL_DETECTORS:
        return create_proposal_detector(name, num_classes, chosen, pretrained=pretrained,
                                        pretrained_backbone=pretrained_backbone)
    return _create_faster_rcnn(name, num_classes, chosen, pretrained, pretrained_backbone)


def _create_faster_rcnn(name: str, num_classes: int, options: FasterRCNNOptions,
                        pretrained: str | os.PathLike | None,
                        pretrained_backbone: str | os.PathLike | None) -> FasterRCNN:
    """Faster R-CNN ``name`` with the family's choices filled into ``options``' nulls."""
    spec = DETECTORS[name]
    weighted = pretrained is not None or pretrained_backbone is not None
    trainable = options.trainable_backbone_layers
    if trainable is None:
        trainable = 3 if weighted else spec.max_trainable
    options = replace(
        options, trainable_backbone_layers=trainable,
        frozen_bn=weighted if options.frozen_bn is None else options.frozen_bn,
        image_mean=list(options.image_mean or spec.image_mean),
        image_std=list(options.image_std or spec.image_std),
        rpn_score_thresh=(spec.rpn_score_thresh if options.rpn_score_thresh is None
                          else options.rpn_score_thresh))

    backbone = _build_backbone(spec, options)
    if pretrained_backbone is not None:
        state, source = classification_weights(spec.arch, pretrained_backbone)
        load_classification_weights(backbone.body, state, spec.classification_prefix, source)
    o = options
    model = FasterRCNN(
        backbone, num_classes, anchor_generator=_anchors(spec, o), box_roi_pool=_roi_pool(spec, o),
        **constructor_arguments(FasterRCNN, o),
        config=detector_config(name, num_classes, o))
    if pretrained is not None:
        state, source = _detector_weights(name, spec, pretrained)
        load_detector_weights(model, state, source)
    return model


def _build_backbone(spec: DetectorSpec, options: FasterRCNNOptions) -> nn.Module:
    trainable, frozen = options.trainable_backbone_layers, options.frozen_bn
    norm_layer: Callable[[int], nn.Module] = FrozenBatchNorm2d if frozen else nn.BatchNorm2d
    fpn_args: dict[str, Any] = {}
    if options.returned_layers is not None:
        fpn_args["returned_layers"] = list(options.returned_layers)
    if options.fpn_channels is not None:
        fpn_args["out_channels"] = int(options.fpn_channels)
    if spec.family == "efficientnet_fpn":  # TensorFlow's BatchNorm eps, frozen or not
        lite_norm = partial(FrozenBatchNorm2d, eps=1e-3) if frozen else TF_BATCH_NORM
        return efficientnet_lite_fpn_backbone(lite_norm, trainable, **fpn_args)
    if spec.family == "resnet_fpn":
        return resnet_fpn_backbone(spec.arch, norm_layer, trainable, **fpn_args)
    if spec.family == "mobilenet_fpn":
        return mobilenet_fpn_backbone(spec.arch, norm_layer, trainable, **fpn_args)
    if fpn_args:
        raise ConfigError(f"{spec.arch} has a single feature level: no returned_layers/fpn_channels")
    return single_level_backbone(spec.arch, trainable)


def _anchors(spec: DetectorSpec, options: FasterRCNNOptions) -> AnchorGenerator:
    """Anchors from the options, or the family's: 8x the stride per FPN level, 128–512 single."""
    sizes = options.anchor_sizes
    if sizes is None:
        if spec.family == "single_level":
            sizes = ((128, 256, 512),)
        elif spec.family == "resnet_fpn":
            strides = [2 ** (k + 1) for k in options.returned_layers or (1, 2, 3, 4)]
            sizes = tuple((8 * s,) for s in [*strides, 2 * strides[-1]])
        elif spec.family == "efficientnet_fpn":  # stages 2, 4, 6 + pool: strides 8, 16, 32, 64
            strides = [LITE_STAGE_STRIDES[k] for k in options.returned_layers or (2, 4, 6)]
            sizes = tuple((4 * s, 8 * s) for s in [*strides, 2 * strides[-1]])
        else:
            levels = len(options.returned_layers or (0, 1)) + 1
            sizes = ((32, 64, 128, 256, 512),) * levels
    ratios = options.aspect_ratios or (0.5, 1.0, 2.0)
    return AnchorGenerator(_tuples(sizes), _tuples(ratios))


def _tuples(values: Sequence) -> tuple:
    return tuple(_tuples(v) if isinstance(v, Sequence) else v for v in values)


def _roi_pool(spec: DetectorSpec, options: FasterRCNNOptions) -> nn.Module | None:
    if options.roi_pool == "align":
        return None  # FasterRCNN's default MultiScaleRoIAlign over the backbone's levels
    if options.roi_pool == "pool" and spec.family == "single_level":
        return RoIPool("0", 7)
    raise ConfigError(f"roi_pool must be 'align' or, for single-level backbones, 'pool'; "
                      f"got {options.roi_pool!r}")


def _detector_weights(name: str, spec: DetectorSpec, pretrained: str | os.PathLike) -> tuple[dict, str]:
    if str(pretrained) == "coco":
        if spec.coco_weights is None:
            with_coco = [n for n, s in DETECTORS.items() if s.coco_weights]
            raise WeightsError(f"no COCO weights exist for {name}; detectors with COCO weights: "
                               f"{', '.join(with_coco)} (or pass pretrained_backbone)")
        url = torchvision_weights_url(spec.coco_weights, "COCO_V1")
        return fetch_url_weights(url, f"COCO {name}"), url
    return load_state_dict_file(existing_file(pretrained, "'coco'")), str(pretrained)


