"""`WinogradConv2d`: an ``nn.Conv2d`` whose large 3x3 CPU maps go through NNPACK's Winograd kernel."""

from __future__ import annotations

from torch import Tensor, nn

from visionkit.models.module_swap import swap_children
from visionkit.ops.winograd_conv import conv2d, winograd_layer


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
