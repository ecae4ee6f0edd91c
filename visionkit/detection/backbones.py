"""Detection backbones: a torchvision classification architecture cut into a feature extractor.

- `resnet_fpn_backbone`: ResNet/ResNeXt stages ``layer1..4`` → FPN (strides 4–32, plus a
  stride-64 ``"pool"`` level for the RPN), as in torchvision's ``fasterrcnn_resnet50_fpn``.
- `mobilenet_fpn_backbone`: MobileNetV3 features, the last two stages (strides 16, 32) → FPN.
- `efficientnet_lite_fpn_backbone`: EfficientNet-Lite0 stages 3, 5 and 7 (strides 8, 16, 32) →
  FPN (plus the stride-64 ``"pool"`` level); its keys are those of the ImageNet file.
- `single_level_backbone`: VGG/AlexNet conv features without the last max-pool (stride 16),
  one map named ``"0"``, as in the original Faster R-CNN; `resnet_single_level_backbone`:
  ResNet up to ``layer3`` (stride 16, the C4 map), also one ``"0"`` map.

Every backbone returns an ordered dict of ``[N, out_channels, h, w]`` maps, finest first, and
has ``out_channels``. Module names follow torchvision's detection models (``body.layer1...``,
``body.0...``, ``fpn.inner_blocks...``), so their state dicts load without a key map.
``trainable_layers`` counts stages from the top (the rest get ``requires_grad=False``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from visionkit.detection.fpn import FeaturePyramidNetwork
from visionkit.errors import ConfigError, WeightsError
from visionkit.models.efficientnet_lite import EfficientNetLite, efficientnet_lite_groups

NormLayer = Callable[[int], nn.Module]


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, all buffers (nothing trains).

    Computes exactly what ``nn.BatchNorm2d`` computes in eval mode (same kernel), so a model
    trained with BatchNorm gives the same outputs after loading into a frozen one. Loading drops
    ``num_batches_tracked``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise with the stored statistics, then scale and shift."""
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, momentum=0.0, eps=self.eps)


class LayerGetter(nn.ModuleDict):
    """Run a model's children in order up to the last wanted one; return the wanted outputs."""

    def __init__(self, model: nn.Module, return_layers: Mapping[str, str]) -> None:
        """``return_layers`` maps child names of ``model`` to output names."""
        remaining = set(return_layers)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for name, module in model.named_children():
            if not remaining:
                break
            layers[name] = module
            remaining.discard(name)
        if remaining:
            raise ConfigError(f"return_layers {sorted(remaining)} are not children of the model")
        super().__init__(layers)
        self.return_layers = dict(return_layers)

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """The wanted intermediate maps, in model order."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out


class BackboneWithFPN(nn.Module):
    """``body`` (a `LayerGetter`) followed by a `FeaturePyramidNetwork`."""

    def __init__(self, body: LayerGetter, in_channels_list: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(in_channels_list, out_channels)
        self.out_channels = out_channels

    @property
    def featmap_names(self) -> list[str]:
        """Names of the maps RoI pooling uses (the FPN levels, not ``"pool"``)."""
        return list(self.body.return_layers.values())

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """FPN maps of a normalised batch, finest first."""
        return self.fpn(self.body(x))


class SingleLevelBackbone(nn.Module):
    """Plain conv features, one output map named ``"0"``."""

    def __init__(self, body: nn.Sequential, out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.out_channels = out_channels
        self.featmap_names = ["0"]

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """The single feature map of a normalised batch."""
        return OrderedDict([("0", self.body(x))])


def _check_trainable(trainable_layers: int, most: int) -> None:
    if not 0 <= trainable_layers <= most:
        raise ConfigError(f"trainable_backbone_layers must be in [0, {most}], got {trainable_layers}")


def _freeze(modules: Sequence[nn.Module]) -> None:
    for module in modules:
        module.requires_grad_(False)


def resnet_fpn_backbone(
    arch: str,
    norm_layer: NormLayer,
    trainable_layers: int = 5,
    returned_layers: Sequence[int] = (1, 2, 3, 4),
    out_channels: int = 256,
) -> BackboneWithFPN:
    """ResNet-family ``arch`` (torchvision name) with an FPN over ``layer{returned_layers}``."""
    _check_trainable(trainable_layers, 5)
    if not returned_layers or min(returned_layers) < 1 or max(returned_layers) > 4:
        raise ConfigError(f"returned_layers must be among 1..4, got {list(returned_layers)}")
    net = torchvision.models.get_model(arch, weights=None, norm_layer=norm_layer)
    stages = [[net.conv1, net.bn1], [net.layer1], [net.layer2], [net.layer3], [net.layer4]]
    _freeze([m for stage in stages[: 5 - trainable_layers] for m in stage])
    body = LayerGetter(net, {f"layer{k}": str(i) for i, k in enumerate(returned_layers)})
    channels = [_last_conv(getattr(net, f"layer{k}")[-1]).out_channels for k in returned_layers]
    return BackboneWithFPN(body, channels, out_channels)


def mobilenet_fpn_backbone(
    arch: str,
    norm_layer: NormLayer,
    trainable_layers: int = 6,
    returned_layers: Sequence[int] | None = None,
    out_channels: int = 256,
) -> BackboneWithFPN:
    """MobileNet ``arch`` features with an FPN over two stages (default: the last two)."""
    features = torchvision.models.get_model(arch, weights=None, norm_layer=norm_layer).features
    # Stages start at the first layer and at each downsampling block; the last layer is its own.
    stage_starts = [0] + [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)]
    stage_starts.append(len(features) - 1)
    num_stages = len(stage_starts)
    _check_trainable(trainable_layers, num_stages)
    frozen_until = len(features) if trainable_layers == 0 else stage_starts[num_stages - trainable_layers]
    _freeze(list(features[:frozen_until]))
    returned = list(returned_layers) if returned_layers else [num_stages - 2, num_stages - 1]
    if min(returned) < 0 or max(returned) >= num_stages:
        raise ConfigError(f"returned_layers must be among 0..{num_stages - 1}, got {returned}")
    body = LayerGetter(features, {str(stage_starts[k]): str(i) for i, k in enumerate(returned)})
    channels = [features[stage_starts[k]].out_channels for k in returned]
    return BackboneWithFPN(body, channels, out_channels)


class EfficientNetLiteBody(nn.Module):
    """EfficientNet-Lite's stem and blocks (names as in its weights file), returning stage outputs.

    Args:
        net: the classification network whose stem and blocks this body takes (its 1x1 head
            convolution and classifier are left out).
        returned_stages: stage indices (0..6) whose last block's output is returned, as maps
            named ``"0"``, ``"1"``, ... finest first.
    """

    def __init__(self, net: EfficientNetLite, returned_stages: Sequence[int]) -> None:
        super().__init__()
        self._conv_stem, self._bn0, self.act = net._conv_stem, net._bn0, net.act
        last = net.stage_ends[max(returned_stages)]
        self._blocks = nn.ModuleList(net._blocks[: last + 1])
        self.return_layers = {net.stage_ends[k]: str(i) for i, k in enumerate(returned_stages)}

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """Stage maps of a normalised batch `[B, 3, H, W]`, finest first."""
        x = self.act(self._bn0(self._conv_stem(x)))  # [B, 32, H/2, W/2]
        out: OrderedDict[str, Tensor] = OrderedDict()
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in self.return_layers:
                out[self.return_layers[index]] = x
        return out


def efficientnet_lite_fpn_backbone(
    norm_layer: NormLayer,
    trainable_layers: int = 5,
    returned_layers: Sequence[int] = (2, 4, 6),
    out_channels: int = 256,
) -> BackboneWithFPN:
    """EfficientNet-Lite0 with an FPN over stages ``returned_layers`` (0..6; default 2, 4, 6:
    strides 8, 16, 32 with 40, 112, 320 channels).

    ``trainable_layers`` counts its five layer groups from the top (stages 6-7, stages 4-5,
    stage 3, stage 2, stem + stage 1), as ResNet's five stages are counted.
    """
    _check_trainable(trainable_layers, 5)
    returned = list(returned_layers)
    if not returned or min(returned) < 0 or max(returned) > 6 or returned != sorted(set(returned)):
        raise ConfigError(f"returned_layers must be increasing stages among 0..6, got {returned}")
    net = EfficientNetLite(norm_layer=norm_layer)
    groups = efficientnet_lite_groups(net)
    _freeze([m for group in groups[: 5 - trainable_layers] for m in group])
    body = EfficientNetLiteBody(net, returned)
    return BackboneWithFPN(body, [net.stage_channels[k] for k in returned], out_channels)


def single_level_backbone(arch: str, trainable_layers: int | None = None) -> SingleLevelBackbone:
    """VGG/AlexNet ``arch`` conv features up to the last conv (stride 16); None: all blocks train.

    Blocks end at each max-pool: 5 for VGG, 3 for AlexNet.
    """
    layers = list(torchvision.models.get_model(arch, weights=None).features)[:-1]
    blocks: list[list[nn.Module]] = [[]]
    for layer in layers:
        blocks[-1].append(layer)
        if isinstance(layer, nn.MaxPool2d):
            blocks.append([])
    trainable_layers = len(blocks) if trainable_layers is None else trainable_layers
    _check_trainable(trainable_layers, len(blocks))
    _freeze([m for block in blocks[: len(blocks) - trainable_layers] for m in block])
    body = nn.Sequential(*layers)
    return SingleLevelBackbone(body, _last_conv(body).out_channels)


def resnet_single_level_backbone(arch: str, norm_layer: NormLayer, trainable_layers: int = 4,
                                 last_layer: int = 3) -> SingleLevelBackbone:
    """ResNet-family ``arch`` up to ``layer{last_layer}`` (stride 16 for 3, the C4 map)."""
    if last_layer not in (2, 3, 4):
        raise ConfigError(f"last_layer must be 2, 3 or 4, got {last_layer}")
    _check_trainable(trainable_layers, last_layer + 1)
    net = torchvision.models.get_model(arch, weights=None, norm_layer=norm_layer)
    stages = [[net.conv1, net.bn1]] + [[getattr(net, f"layer{k}")] for k in range(1, last_layer + 1)]
    _freeze([m for stage in stages[: len(stages) - trainable_layers] for m in stage])
    children = list(net.named_children())
    end = [name for name, _ in children].index(f"layer{last_layer}") + 1
    body = nn.Sequential(OrderedDict(children[:end]))  # torchvision's key names
    return SingleLevelBackbone(body, _last_conv(getattr(net, f"layer{last_layer}")[-1]).out_channels)


def _last_conv(module: nn.Module) -> nn.Conv2d:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)][-1]


def load_classification_weights(body: nn.Module, state_dict: Mapping[str, Tensor], prefix: str,
                                source: str) -> None:
    """Load a torchvision classification state dict (keys ``prefix + body key``) into ``body``."""
    own = body.state_dict()
    wanted = {k: v for k, v in state_dict.items() if k.startswith(prefix)
              and k[len(prefix):] in own}
    picked = {k[len(prefix):]: v for k, v in wanted.items()}
    missing = sorted(k for k in own if k not in picked and not k.endswith("num_batches_tracked"))
    wrong = sorted(k for k in picked if picked[k].shape != own[k].shape)
    if missing or wrong:
        detail = (f"missing {missing[:4]}" if missing else
                  f"shape mismatch at {wrong[0]!r}: file {tuple(picked[wrong[0]].shape)}, "
                  f"model {tuple(own[wrong[0]].shape)}")
        raise WeightsError(f"{source}: weights do not fit the detection backbone ({detail})")
    body.load_state_dict(picked, strict=False)
