"""Inference rewrites of a detector, outputs kept to float rounding: fold BatchNorm, kernels, channels-last.

`fold_batchnorm` merges every fixed-statistics BatchNorm (`FrozenBatchNorm2d`, or
``nn.BatchNorm2d`` in eval mode) into the convolution just before it: ``w' = w * s``,
``b' = (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``, and puts ``nn.Identity``
in its place. Pairs are found where the data flow is known: consecutive children of an
``nn.Sequential`` (MobileNet's conv-norm-activation blocks, ResNet downsample branches) and
``convN`` → ``bnN`` children of one module (ResNet stems and blocks). The result is for
inference: training it would no longer normalise.
"""

from __future__ import annotations

import os
import re

import torch
from torch import nn

from visionkit.detection.backbones import FrozenBatchNorm2d
from visionkit.models.fast_kernels import use_packed_linear, use_winograd

_NUMBERED = re.compile(r"^conv(\d+)$")


def _foldable(norm: nn.Module) -> bool:
    if isinstance(norm, FrozenBatchNorm2d):
        return True
    return (isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.track_running_stats
            and norm.running_mean is not None)


@torch.no_grad()
def _fold_into(conv: nn.Conv2d, norm: nn.Module) -> None:
    weight = norm.weight if norm.weight is not None else torch.ones_like(norm.running_var)
    bias = norm.bias if norm.bias is not None else torch.zeros_like(norm.running_mean)
    scale = weight / torch.sqrt(norm.running_var + norm.eps)
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
    conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
    folded = (conv_bias - norm.running_mean) * scale + bias
    if conv.bias is None:
        conv.bias = nn.Parameter(folded.to(conv.weight.dtype), requires_grad=False)
    else:
        conv.bias.copy_(folded)


def _pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(conv name, norm name) child pairs of ``module`` whose data flow is conv → norm."""
    children = dict(module.named_children())
    if isinstance(module, nn.Sequential):
        names = list(children)
        return [(a, b) for a, b in zip(names, names[1:]) if isinstance(children[a], nn.Conv2d)]
    pairs = []
    for name, child in children.items():
        match = _NUMBERED.match(name)
        if match and isinstance(child, nn.Conv2d) and f"bn{match.group(1)}" in children:
            pairs.append((name, f"bn{match.group(1)}"))
    return pairs


def fold_batchnorm(model: nn.Module) -> int:
    """Fold fixed-statistics BatchNorms into their convolutions in place; how many were folded."""
    folded = 0
    for module in list(model.modules()):
        for conv_name, norm_name in _pairs(module):
            conv, norm = getattr(module, conv_name), getattr(module, norm_name)
            if (isinstance(conv, nn.Conv2d) and _foldable(norm)
                    and norm.running_var.shape[0] == conv.out_channels):
                _fold_into(conv, norm)
                setattr(module, norm_name, nn.Identity())
                folded += 1
    return folded


def fast_kernels_enabled() -> bool:
    """Whether inference models use our kernel choices (``VISIONKIT_FAST_KERNELS=0``: PyTorch's own)."""
    return os.environ.get("VISIONKIT_FAST_KERNELS", "1") != "0"


def optimize_for_inference(model: nn.Module, *, fold: bool = True, channels_last: bool = True,
                           fast_kernels: bool | None = None) -> nn.Module:
    """``model`` in eval mode with BatchNorm folded, faster CPU kernels and channels-last weights.

    Channels-last lets oneDNN run the convolutions without layout reorders. The kernels
    (``fast_kernels``, default `fast_kernels_enabled`) are NNPACK's Winograd for 3x3 convolutions
    on large CPU maps (`visionkit.models.fast_kernels`) and oneDNN with packed weights for linear
    layers (`visionkit.models.fast_kernels`); they change results only by float rounding.
    Measured by `visionkit benchmark detect-latency`.
    """
    model.eval()
    if fold:
        fold_batchnorm(model)
    if fast_kernels_enabled() if fast_kernels is None else fast_kernels:
        use_winograd(model)
        use_packed_linear(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model
