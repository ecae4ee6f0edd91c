"""ResNet and ResNeXt backbones (torchvision architectures)."""

from __future__ import annotations

from torch import nn

from visionkit.models.backbone import BackboneSpec


def resnet_groups(net: nn.Module) -> list[list[nn.Module]]:
    """Stem, then the four residual stages."""
    return [[net.conv1, net.bn1], [net.layer1], [net.layer2], [net.layer3], [net.layer4]]


# Zero-initialised last BatchNorm of each residual block (as timm does by default): each block
# starts as the identity, which trains faster from random init; pretrained weights overwrite it.
_RESNET = BackboneSpec(family="resnet", final_layer="fc", layer_groups=resnet_groups,
                       tv_kwargs={"zero_init_residual": True})

BACKBONES: dict[str, BackboneSpec] = {
    name: _RESNET
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                 "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
                 "wide_resnet50_2", "wide_resnet101_2")
}
