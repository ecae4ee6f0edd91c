"""Multiply-accumulates of one torch op, from its arguments and output.

Counted: convolutions, transposed convolutions, linear layers and matrix products — the ops
`torch.utils.flop_counter` counts (it reports FLOPs = 2·MACs). Bias additions, norms,
activations, pooling and elementwise ops count 0, as there.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

CONVS = {torch.conv1d, torch.conv2d, torch.conv3d}
TRANSPOSED_CONVS = {torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d}
MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm,
           torch.bmm, torch.Tensor.bmm}
ADD_MATMULS = {torch.addmm, torch.Tensor.addmm, torch.baddbmm, torch.Tensor.baddbmm}


def op_macs(func: Any, args: tuple, kwargs: dict, out: Any) -> int:
    """MACs of `func(*args, **kwargs)` that returned `out`; 0 for ops that are not counted."""
    if not isinstance(out, torch.Tensor):
        return 0
    if func in CONVS:
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        return out.numel() * weight.shape[1] * math.prod(weight.shape[2:])
    if func in TRANSPOSED_CONVS:
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        return args[0].numel() * weight.shape[1] * math.prod(weight.shape[2:])
    if func is F.linear:
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        return out.numel() * weight.shape[-1]
    if func in MATMULS:
        return out.numel() * args[0].shape[-1]
    if func in ADD_MATMULS:
        return out.numel() * args[1].shape[-1]
    return 0
