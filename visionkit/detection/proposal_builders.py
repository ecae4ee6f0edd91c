"""R-CNN and Fast R-CNN by name: ``rcnn_<arch>`` and ``fast_rcnn_<arch>`` over torchvision backbones.

- ``fast_rcnn_vgg16`` / ``fast_rcnn_alexnet``: conv features without the last max-pool (stride
  16), as in the paper; ``fast_rcnn_resnet18`` / ``fast_rcnn_resnet50``: ResNet up to ``layer3``
  (stride 16). Then RoIPool (or ``roi_pool="align"``) and the two-FC head.
- ``rcnn_<arch>``: the whole classification network (a `visionkit.models` backbone, pooled
  features) on each warped proposal.

``pretrained_backbone="imagenet"|PATH`` loads classification weights (torchvision layout);
``pretrained=PATH`` a visionkit checkpoint of the same detector (a predictor of another class
count starts fresh). ``trainable_backbone_layers``: backbone stages that train, counted from the
top (default 3 with pretrained weights, else all); ``frozen_bn`` (Fast R-CNN ResNets: BatchNorm
with fixed statistics, default on with pretrained weights). ``proposals``: `SelectiveSearch` arguments
(``mode``, ``max_proposals``, ``max_side``, ``sigma``, ``seed``). Every other option is a keyword
argument of `FastRCNN` or `RCNN`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from visionkit.detection.backbones import (
    FrozenBatchNorm2d,
    load_classification_weights,
    resnet_single_level_backbone,
    single_level_backbone,
)
from visionkit.detection.fast_rcnn import FastRCNN
from visionkit.detection.rcnn import RCNN
from visionkit.detection.selective_search import SelectiveSearch
from visionkit.detection.weights import classification_weights, existing_file, load_detector_weights
from visionkit.errors import ConfigError
from visionkit.models.backbone import build_backbone
from visionkit.models.classifier import BACKBONES, resolve_pretrained
from visionkit.models.transfer import set_group_trainable, trainable_deepest
from visionkit.models.weights import load_state_dict_file

ARCHS = ("alexnet", "vgg16", "resnet18", "resnet50")
PROPOSAL_DETECTORS: dict[str, tuple[type[nn.Module], str]] = {
    **{f"fast_rcnn_{arch}": (FastRCNN, arch) for arch in ARCHS},
    **{f"rcnn_{arch}": (RCNN, arch) for arch in ARCHS},
}
_MODULE_ARGS = ("proposal_generator",)


def keyword_options(cls: type, exclude: tuple[str, ...]) -> list[str]:
    """Keyword-only constructor arguments of ``cls`` (a detector class), less ``exclude``."""
    params = inspect.signature(cls.__init__).parameters
    return [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in exclude]


def proposal_detector_options(name: str) -> list[str]:
    """Keyword options `create_proposal_detector` accepts for ``name`` besides the weights."""
    own = keyword_options(PROPOSAL_DETECTORS[name][0], _MODULE_ARGS)
    return sorted([*own, "proposals", "trainable_backbone_layers", "frozen_bn"])


def create_proposal_detector(
    name: str,
    num_classes: int,
    *,
    pretrained: str | os.PathLike | None = None,
    pretrained_backbone: str | os.PathLike | None = None,
    trainable_backbone_layers: int | None = None,
    frozen_bn: bool | None = None,
    proposals: Mapping[str, Any] | None = None,
    **options: Any,
) -> FastRCNN | RCNN:
    """Build R-CNN or Fast R-CNN ``name`` for ``num_classes = K + 1`` (see the module docstring).

    Called by `visionkit.detection.create_detector`, which has checked the name, the class count
    and the weights request; the options are checked here (each model has its own).
    """
    unknown = sorted(set(options) - set(proposal_detector_options(name)))
    if unknown:
        raise ConfigError(f"unknown options {unknown} for {name}; known: "
                          f"{', '.join(proposal_detector_options(name))}")
    kind, arch = PROPOSAL_DETECTORS[name]
    weighted = pretrained is not None or pretrained_backbone is not None
    frozen = weighted if frozen_bn is None else frozen_bn
    try:
        generator = SelectiveSearch(**dict(proposals or {}))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"proposals: {err}") from err
    if kind is FastRCNN:
        backbone, trainable = _feature_backbone(arch, trainable_backbone_layers, weighted, frozen)
        if pretrained_backbone is not None:
            state, source = classification_weights(arch, pretrained_backbone)
            prefix = "" if arch.startswith("resnet") else "features."
            load_classification_weights(backbone.body, state, prefix, source)
        model: FastRCNN | RCNN = FastRCNN(backbone, num_classes, proposal_generator=generator, **options)
    else:
        cnn = build_backbone(arch, BACKBONES)
        if pretrained_backbone is not None:
            cnn.load_torchvision_state_dict(*resolve_pretrained(arch, pretrained_backbone))
        groups = cnn.layer_groups()
        trainable = len(groups) if trainable_backbone_layers is None and not weighted else (
            3 if trainable_backbone_layers is None else trainable_backbone_layers)
        if not 0 <= trainable <= len(groups):
            raise ConfigError(f"trainable_backbone_layers must be in [0, {len(groups)}], got {trainable}")
        set_group_trainable(groups, trainable_deepest(groups, trainable))
        options = {"warp_size": cnn.input_size, "image_mean": cnn.mean, "image_std": cnn.std, **options}
        model = RCNN(cnn, num_classes, proposal_generator=generator, **options)
    if pretrained is not None:
        path = existing_file(pretrained, "a checkpoint of this detector")
        load_detector_weights(model, load_state_dict_file(path), str(path))
    model.config = {"name": name, "num_classes": num_classes, "trainable_backbone_layers": trainable,
                    "frozen_bn": frozen, "proposals": generator.settings, **options}
    return model


def _feature_backbone(arch: str, trainable: int | None, weighted: bool, frozen: bool
                      ) -> tuple[nn.Module, int | None]:
    """Stride-16 single-map backbone of ``arch`` and the number of its stages that train (None: all)."""
    if trainable is None and weighted:
        trainable = 3
    if arch.startswith("resnet"):
        norm = FrozenBatchNorm2d if frozen else nn.BatchNorm2d
        layers = 4 if trainable is None else trainable  # conv1 + layer1..3
        return resnet_single_level_backbone(arch, norm, layers), layers
    return single_level_backbone(arch, trainable), trainable
