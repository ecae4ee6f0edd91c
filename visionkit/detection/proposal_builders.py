"""R-CNN and Fast R-CNN by name: ``rcnn_<arch>`` and ``fast_rcnn_<arch>`` over torchvision backbones.

- ``fast_rcnn_vgg16`` / ``fast_rcnn_alexnet``: conv features without the last max-pool (stride
  16), as in the paper; ``fast_rcnn_resnet18`` / ``fast_rcnn_resnet50``: ResNet up to ``layer3``
  (stride 16). Then RoIPool (or ``roi_pool="align"``) and the two-FC head.
- ``rcnn_<arch>``: the whole classification network (a `visionkit.models` backbone, pooled
  features) on each warped proposal.

``pretrained_backbone="imagenet"|PATH`` loads classification weights (torchvision layout);
``pretrained=PATH`` a visionkit checkpoint of the same detector (a predictor of another class
count starts fresh). Options: `visionkit.detection.options.FastRCNNOptions` and `RCNNOptions`
(``proposals``: the `SelectiveSearch` settings; the rest `FastRCNN` / `RCNN` arguments).
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace

from torch import nn

from visionkit.detection.backbones import (
    FrozenBatchNorm2d,
    load_classification_weights,
    resnet_single_level_backbone,
    single_level_backbone,
)
from visionkit.detection.fast_rcnn import FastRCNN
from visionkit.detection.options import FastRCNNOptions, RCNNOptions, constructor_arguments, detector_config
from visionkit.detection.rcnn import RCNN
from visionkit.detection.selective_search import SelectiveSearch
from visionkit.detection.weights import classification_weights, existing_file, load_detector_weights
from visionkit.errors import ConfigError
from visionkit.models.backbone import IMAGENET_MEAN, IMAGENET_STD, build_backbone
from visionkit.models.classifier import BACKBONES, resolve_pretrained
from visionkit.models.transfer import set_group_trainable, trainable_deepest
from visionkit.models.weights import load_state_dict_file

ARCHS = ("alexnet", "vgg16", "resnet18", "resnet50")
PROPOSAL_DETECTORS: dict[str, tuple[type[nn.Module], str]] = {
    **{f"fast_rcnn_{arch}": (FastRCNN, arch) for arch in ARCHS},
    **{f"rcnn_{arch}": (RCNN, arch) for arch in ARCHS},
}
def create_proposal_detector(
    name: str,
    num_classes: int,
    options: FastRCNNOptions | RCNNOptions,
    *,
    pretrained: str | os.PathLike | None = None,
    pretrained_backbone: str | os.PathLike | None = None,
) -> FastRCNN | RCNN:
    """Build R-CNN or Fast R-CNN ``name`` for ``num_classes = K + 1`` (see the module docstring).

    Called by `visionkit.detection.create_detector`, which has checked the name, the class count,
    the weights request and made ``options`` (the family's typed options).
    """
    kind, arch = PROPOSAL_DETECTORS[name]
    weighted = pretrained is not None or pretrained_backbone is not None
    frozen = weighted if options.frozen_bn is None else options.frozen_bn
    try:
        generator = SelectiveSearch(**asdict(options.proposals))
    except ValueError as err:
        raise ConfigError(f"proposals: {err}") from err
    if isinstance(options, FastRCNNOptions):
        backbone, trainable = _feature_backbone(arch, options.trainable_backbone_layers, weighted, frozen)
        if pretrained_backbone is not None:
            state, source = classification_weights(arch, pretrained_backbone)
            prefix = "" if arch.startswith("resnet") else "features."
            load_classification_weights(backbone.body, state, prefix, source)
        o = options = replace(options, trainable_backbone_layers=trainable, frozen_bn=frozen,
                              image_mean=list(options.image_mean or IMAGENET_MEAN),
                              image_std=list(options.image_std or IMAGENET_STD))
        model: FastRCNN | RCNN = FastRCNN(backbone, num_classes, proposal_generator=generator,
                                          **constructor_arguments(FastRCNN, o),
                                          config=detector_config(name, num_classes, o))
    else:
        cnn = build_backbone(arch, BACKBONES)
        if pretrained_backbone is not None:
            cnn.load_torchvision_state_dict(*resolve_pretrained(arch, pretrained_backbone))
        groups = cnn.layer_groups()
        trainable = options.trainable_backbone_layers
        if trainable is None:
            trainable = 3 if weighted else len(groups)
        if not 0 <= trainable <= len(groups):
            raise ConfigError(f"trainable_backbone_layers must be in [0, {len(groups)}], got {trainable}")
        set_group_trainable(groups, trainable_deepest(groups, trainable))
        o = options = replace(options, trainable_backbone_layers=trainable, frozen_bn=frozen,
                              warp_size=options.warp_size or cnn.input_size,
                              image_mean=list(options.image_mean or cnn.mean),
                              image_std=list(options.image_std or cnn.std))
        model = RCNN(cnn, num_classes, proposal_generator=generator, **constructor_arguments(RCNN, o),
                     config=detector_config(name, num_classes, o))
    if pretrained is not None:
        path = existing_file(pretrained, "a checkpoint of this detector")
        load_detector_weights(model, load_state_dict_file(path), str(path))
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
