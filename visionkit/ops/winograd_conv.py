"""3x3 convolution on large CPU maps through NNPACK's Winograd kernel, oneDNN's direct one otherwise.

oneDNN (PyTorch's CPU convolution) computes 3x3 convolutions directly: 9 multiply-adds per
input channel and output pixel. NNPACK, built into PyTorch's CPU wheels, has a Winograd
F(6x6, 3x3) kernel that needs about a quarter of those multiplies. Per call it also transforms
the kernel, a fixed cost that only pays on large maps; and its batched entry point is slower than
one image at a time. Measured on a 2-core AVX-512 CPU (256 -> 256 channels): 200x272 map 0.37x
oneDNN's time, 50x68 0.53x, 20x34 1.1x. Hence `MIN_PIXELS`. Results differ from the direct
convolution by Winograd's rounding: about 1e-5 of the output's largest value in float32.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from visionkit.ops.eager import capturing_graph

MIN_PIXELS = 2048  # map pixels (H x W) per image from which the Winograd kernel is faster (measured)


@functools.cache
def nnpack_available() -> bool:
    """Whether this PyTorch build has NNPACK (checking it also initialises the library)."""
    return bool(torch.backends.nnpack.is_available())


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def winograd_layer(kernel_size: int | Sequence[int], stride: int | Sequence[int] = 1,
                   padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                   groups: int = 1) -> bool:
    """Whether a convolution's shape suits NNPACK's Winograd kernel: 3x3, stride 1, padding up
    to 2 (NNPACK takes padding below the kernel size), no dilation, no groups."""
    return (_pair(kernel_size) == (3, 3) and _pair(stride) == (1, 1) and _pair(dilation) == (1, 1)
            and groups == 1 and max(_pair(padding)) <= 2)


def winograd_applies(input: Tensor, weight: Tensor, stride: int | Sequence[int] = 1,
                     padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                     groups: int = 1) -> bool:
    """NNPACK's Winograd path: eager float32 CPU maps of `MIN_PIXELS` or more (input pixels per
    image), 3x3 kernel, stride 1, padding up to 2, outside autocast, NNPACK enabled."""
    if capturing_graph(input, weight):
        return False
    return (input.device.type == "cpu" and input.dtype == torch.float32 and weight.dtype == torch.float32
            and input.dim() == 4 and input.shape[0] > 0
            and winograd_layer(tuple(weight.shape[-2:]), stride, padding, dilation, groups)
            and input.shape[-2] * input.shape[-1] >= MIN_PIXELS
            and not torch.is_autocast_enabled("cpu") and torch._C._get_nnpack_enabled()
            and nnpack_available())


def winograd_conv2d(input: Tensor, weight: Tensor, bias: Tensor | None,
                    padding: int | Sequence[int]) -> Tensor:
    """NNPACK's 3x3 stride-1 convolution of ``input [N, C, H, W]``, one image per call."""
    weight, padding = weight.contiguous(), list(_pair(padding))
    images = [torch._nnpack_spatial_convolution(image[None].contiguous(), weight, bias, padding, [1, 1])
              for image in input]
    return images[0] if len(images) == 1 else torch.cat(images)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Sequence[int] = 1,
           padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, groups: int = 1) -> Tensor:
    """`F.conv2d` (numeric padding), through NNPACK's Winograd kernel where `winograd_applies`."""
    if winograd_applies(input, weight, stride, padding, dilation, groups):
        return winograd_conv2d(input, weight, bias, padding)
    return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
