"""VGG and AlexNet backbones: conv blocks split at max-pools, then FC6/FC7 kept from the source."""

from __future__ import annotations

from torch import nn

from visionkit.models.backbone import BackboneSpec


def conv_fc_groups(net: nn.Module) -> list[list[nn.Module]]:
    """One group per conv block (ending at a MaxPool), then the FC6/FC7 classifier layers."""
    groups: list[list[nn.Module]] = []
    block: list[nn.Module] = []
    for layer in net.features:
        block.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            groups.append(block)
            block = []
    if block:
        groups.append(block)
    groups.append([net.classifier])
    return [g for g in groups if any(True for m in g for _ in m.parameters())]


_CONV_FC = BackboneSpec(family="vgg", final_layer="classifier.6", layer_groups=conv_fc_groups)

BACKBONES: dict[str, BackboneSpec] = {
    "alexnet": BackboneSpec(family="alexnet", final_layer="classifier.6",
                            layer_groups=conv_fc_groups),
    **{name: _CONV_FC for name in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
                                   "vgg19", "vgg19_bn")},
}
