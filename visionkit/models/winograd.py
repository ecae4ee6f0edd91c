"""`WinogradConv2d`: an ``nn.Conv2d`` whose large 3x3 CPU maps go through NNPACK's Winograd kernel."""

from __future__ import annotations

from torch import Tensor, nn

from visionkit.ops.winograd_conv import conv2d


class WinogradConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict) computed by `visionkit.ops.winograd_conv.conv2d`."""

    def forward(self, input: Tensor) -> Tensor:
        """The convolution of ``input``."""
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _eligible(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple))


def use_winograd(model: nn.Module) -> int:
    """Swap every plain 3x3 stride-1 ``nn.Conv2d`` of ``model`` for a `WinogradConv2d` sharing its
    parameters, in place; how many were swapped."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if _eligible(child):
                fast = WinogradConv2d(child.in_channels, child.out_channels, 3, padding=child.padding,
                                      bias=False, device="meta")
                fast.weight, fast.bias = child.weight, child.bias
                fast.train(child.training)
                setattr(module, name, fast)
                swapped += 1
    return swapped
