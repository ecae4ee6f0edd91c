"""Linear layers on the CPU through oneDNN with the weight packed once, instead of MKL's sgemm.

PyTorch's CPU ``F.linear`` calls MKL, which repacks the weight on every call; with the few
dozen to thousand rows of a detector's box head that repacking is a large part of the time, and
on AMD CPUs MKL does not use AVX-512. oneDNN's matmul (`torch.ops.mkldnn._linear_pointwise`,
the op PyTorch's own compiler emits for frozen CPU graphs) on a weight reordered once into its
blocked layout measured 0.72x of ``F.linear`` for 68 x 12544 -> 1024 (a box head's fc6) and
0.9x for 1000 rows, on a 2-core AVX-512 CPU. Results differ by summation order (float rounding).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from visionkit.ops.eager import capturing_graph

_BATCH_HINT = 128  # rows the weight layout is chosen for; any row count works


@functools.cache
def onednn_linear_available() -> bool:
    """Whether this PyTorch build has oneDNN's packed linear ops."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        packed = pack_linear_weight(torch.ones(2, 3))
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 3), packed, None, "none", [], "")
    except (AttributeError, RuntimeError, NotImplementedError):  # op missing or not built for this CPU
        return False
    return bool(torch.allclose(out, torch.full((1, 2), 3.0)))


def pack_linear_weight(weight: Tensor) -> Tensor:
    """``weight [out, in]`` reordered into oneDNN's blocked layout (an opaque tensor)."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), _BATCH_HINT)


def packed_linear_applies(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> bool:
    """oneDNN's path: eager float32 CPU rows ``[M, in]`` with no gradient to record, outside
    autocast, on a weight made outside inference mode (whose changes a version counter tracks)."""
    if capturing_graph(input, weight):
        return False
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (input, weight, bias))
    return (input.device.type == "cpu" and input.dtype == torch.float32 and weight.dtype == torch.float32
            and input.dim() == 2 and weight.device.type == "cpu" and not weight.is_inference()
            and not needs_grad and not torch.is_autocast_enabled("cpu") and onednn_linear_available())


def packed_linear(input: Tensor, packed: Tensor, bias: Tensor | None) -> Tensor:
    """``input @ weight.T + bias`` with ``packed = pack_linear_weight(weight)``."""
    return torch.ops.mkldnn._linear_pointwise(input.contiguous(), packed, bias, "none", [], "")
