"""Feature Pyramid Network (Lin et al. 2017): top-down pathway with lateral 1x1 connections.

Input: an ordered dict of backbone maps, finest first, with ``in_channels_list`` channels.
Output: an ordered dict with the same names (plus ``"pool"`` when ``max_pool_level`` is on: a
stride-2 subsampling of the coarsest output, used by the RPN only), every map with
``out_channels`` channels. Parameter names match torchvision's ``FeaturePyramidNetwork``
(``inner_blocks.i.0``, ``layer_blocks.i.0``) so its state dicts load unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class FeaturePyramidNetwork(nn.Module):
    """Lateral 1x1 convs, nearest-neighbour top-down sums, 3x3 output convs (no norm, no ReLU)."""

    def __init__(self, in_channels_list: Sequence[int], out_channels: int,
                 max_pool_level: bool = True) -> None:
        super().__init__()
        self.inner_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, out_channels, 1)) for c in in_channels_list)
        self.layer_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1))
            for _ in in_channels_list)
        self.max_pool_level = max_pool_level
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=1)
                nn.init.zeros_(module.bias)

    def forward(self, features: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
        """Pyramid maps, finest first, named as the inputs (then ``"pool"``)."""
        names, maps = list(features.keys()), list(features.values())
        last = self.inner_blocks[-1](maps[-1])
        results = [self.layer_blocks[-1](last)]
        for i in range(len(maps) - 2, -1, -1):
            lateral = self.inner_blocks[i](maps[i])
            last = lateral + F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            results.insert(0, self.layer_blocks[i](last))
        if self.max_pool_level:
            names.append("pool")
            results.append(F.max_pool2d(results[-1], kernel_size=1, stride=2))
        return OrderedDict(zip(names, results, strict=True))
