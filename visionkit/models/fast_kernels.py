"""Layers with the parameters and state dict of ``nn.Linear`` / ``nn.Conv2d`` whose CPU inference
runs faster kernels, and the swaps that put them into a model in place.

- `PackedLinear` (`use_packed_linear`): an inference ``nn.Linear`` that runs through oneDNN with
  its weight packed once (`visionkit.ops.packed_linear`).
- `WinogradConv2d` (`use_winograd`): an ``nn.Conv2d`` whose large 3x3 CPU maps go through NNPACK's
  Winograd kernel (`visionkit.ops.winograd_conv`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from visionkit.models.module_swap import swap_children
from visionkit.ops.packed_linear import pack_linear_weight, packed_linear, packed_linear_applies
from visionkit.ops.winograd_conv import conv2d, winograd_layer


class PackedLinear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict); on the CPU without gradients it uses
    `visionkit.ops.packed_linear`, repacking when the weight changes (loading, ``.to``, in-place edits)."""

    _packed: tuple[Tensor, int, Tensor] | None = None  # (weight it was packed from, version, packed)

    def forward(self, input: Tensor) -> Tensor:
        """``input @ weight.T + bias``."""
        if not packed_linear_applies(input, self.weight, self.bias):
            return F.linear(input, self.weight, self.bias)
        weight = self.weight
        if self._packed is None or self._packed[0] is not weight or self._packed[1] != weight._version:
            self._packed = (weight, weight._version, pack_linear_weight(weight))
        return packed_linear(input, self._packed[2], self.bias)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> PackedLinear:
        # .to(), .float(), ... may set weight.data, which keeps the version; loading a state dict
        # copies in place (a new version) or assigns new parameters (another object): both repack
        self._packed = None
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        """State for pickling and ``copy.deepcopy``, less the packed weight (opaque, rebuilt on use)."""
        state = super().__getstate__()
        state.pop("_packed", None)
        return state


def _packed(linear: nn.Linear) -> PackedLinear:
    fast = PackedLinear(linear.in_features, linear.out_features, bias=False, device="meta")
    fast.weight, fast.bias = linear.weight, linear.bias
    return fast


def use_packed_linear(model: nn.Module) -> int:
    """Swap every plain ``nn.Linear`` of ``model`` for a `PackedLinear` sharing its parameters, in
    place; how many were swapped."""
    return swap_children(model, lambda child: type(child) is nn.Linear, _packed)


class WinogradConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict) computed by `visionkit.ops.winograd_conv.conv2d`
    where it applies (zero padding given as numbers), by ``nn.Conv2d`` otherwise."""

    def forward(self, input: Tensor) -> Tensor:
        """The convolution of ``input``."""
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(input)
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _eligible(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
            and winograd_layer(conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups))


def _winograd(conv: nn.Conv2d) -> WinogradConv2d:
    fast = WinogradConv2d(conv.in_channels, conv.out_channels, 3, padding=conv.padding, bias=False,
                          device="meta")
    fast.weight, fast.bias = conv.weight, conv.bias
    return fast


def use_winograd(model: nn.Module) -> int:
    """Swap every plain 3x3 stride-1 ``nn.Conv2d`` of ``model`` (padding up to 2) for a
    `WinogradConv2d` sharing its parameters, in place; how many were swapped."""
    return swap_children(model, _eligible, _winograd)
