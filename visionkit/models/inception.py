"""GoogLeNet and Inception-v3 backbones, auxiliary heads off.

torchvision's ImageNet weights for both expect inputs normalised with mean = std = 0.5 (its
`transform_input=True` converts ImageNet-normalised input to that). visionkit normalises with
0.5/0.5 directly and keeps `transform_input=False`, which is equivalent. The auxiliary
classifiers are off (their weights are dropped when loading), as usual for fine-tuning.
"""

from __future__ import annotations

from torch import nn

from visionkit.models.backbone import BackboneSpec

HALF = (0.5, 0.5, 0.5)


def googlenet_groups(net: nn.Module) -> list[list[nn.Module]]:
    """Stem convs, inception 3x, 4x, 5x."""
    return [[net.conv1, net.conv2, net.conv3],
            [net.inception3a, net.inception3b],
            [net.inception4a, net.inception4b, net.inception4c, net.inception4d, net.inception4e],
            [net.inception5a, net.inception5b]]


def inception_v3_groups(net: nn.Module) -> list[list[nn.Module]]:
    """Stem convs, Mixed_5x, Mixed_6x, Mixed_7x."""
    stem = [net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, net.Conv2d_3b_1x1,
            net.Conv2d_4a_3x3]
    return [stem,
            [net.Mixed_5b, net.Mixed_5c, net.Mixed_5d],
            [net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e],
            [net.Mixed_7a, net.Mixed_7b, net.Mixed_7c]]


BACKBONES: dict[str, BackboneSpec] = {
    "googlenet": BackboneSpec(
        family="googlenet", final_layer="fc", layer_groups=googlenet_groups, mean=HALF, std=HALF,
        tv_kwargs={"aux_logits": False, "transform_input": False, "init_weights": True},
        aux_prefixes=("aux1.", "aux2."),
    ),
    "inception_v3": BackboneSpec(
        family="inception", final_layer="fc", layer_groups=inception_v3_groups, input_size=299,
        mean=HALF, std=HALF,
        tv_kwargs={"aux_logits": False, "transform_input": False, "init_weights": True},
        aux_prefixes=("AuxLogits.",),
    ),
}
