"""Box geometry on plain tensors.

Convention: boxes are ``[..., N, 4]`` float tensors in ``xyxy`` absolute pixel coordinates
(x1, y1 top-left; x2, y2 bottom-right; x grows right, y grows down; a box is valid when
``x1 <= x2`` and ``y1 <= y2``). ``xywh`` (top-left corner, width, height) and ``cxcywh``
(centre, width, height) exist only as `box_convert` inputs/outputs.

Signatures and results match ``torchvision.ops`` with one deliberate difference: where two
boxes have a union (or enclosing box) of zero area, IoU/GIoU is 0 here, NaN in torchvision.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _upcast(t: Tensor) -> Tensor:
    """Widen half-precision floats and small ints so products cannot overflow."""
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype in (torch.int32, torch.int64) else t.int()


def _to_xyxy(boxes: Tensor, fmt: str) -> Tensor:
    a, b, c, d = boxes.unbind(-1)
    if fmt == "xywh":
        return torch.stack((a, b, a + c, b + d), dim=-1)
    # cxcywh
    return torch.stack((a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d), dim=-1)


def _from_xyxy(boxes: Tensor, fmt: str) -> Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    if fmt == "xywh":
        return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)
    # cxcywh
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert ``[..., 4]`` boxes between ``xyxy``, ``xywh`` and ``cxcywh`` (a new tensor)."""
    formats = ["xyxy", "xywh", "cxcywh"]
    if in_fmt not in formats or out_fmt not in formats:
        raise ValueError(f"box formats must be among {formats}, got '{in_fmt}' -> '{out_fmt}'")
    if in_fmt == out_fmt:
        return boxes.clone()
    xyxy = boxes if in_fmt == "xyxy" else _to_xyxy(boxes, in_fmt)
    return xyxy if out_fmt == "xyxy" else _from_xyxy(xyxy, out_fmt)


def box_area(boxes: Tensor) -> Tensor:
    """Area of each ``xyxy`` box: ``[..., N, 4] -> [..., N]``."""
    boxes = _upcast(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _pairwise_extent(boxes1: Tensor, boxes2: Tensor, inner: bool) -> Tensor:
    """Pairwise area ``[..., N, M]`` of the intersection (``inner``) or the enclosing box."""
    b1 = _upcast(boxes1)[..., :, None, :]
    b2 = _upcast(boxes2)[..., None, :, :]
    if inner:  # the overlap: from the larger low corner to the smaller high corner
        width = torch.min(b1[..., 2], b2[..., 2]).sub_(torch.max(b1[..., 0], b2[..., 0]))
        height = torch.min(b1[..., 3], b2[..., 3]).sub_(torch.max(b1[..., 1], b2[..., 1]))
    else:  # the enclosing box: from the smaller low corner to the larger high corner
        width = torch.max(b1[..., 2], b2[..., 2]).sub_(torch.min(b1[..., 0], b2[..., 0]))
        height = torch.max(b1[..., 3], b2[..., 3]).sub_(torch.min(b1[..., 1], b2[..., 1]))
    return width.clamp_(min=0).mul_(height.clamp_(min=0))


def _inter_union(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise intersection and union areas, each ``[..., N, M]``."""
    inter = _pairwise_extent(boxes1, boxes2, inner=True)
    union = (box_area(boxes1)[..., :, None] + box_area(boxes2)[..., None, :]).sub_(inter)
    return inter, union


def _safe_div_(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with 0 where ``den`` is 0 (``num`` is 0 there); overwrites its inputs."""
    den = den if den.is_floating_point() else den.float()
    # torch.finfo(den.dtype).tiny, written out: torch.jit.script has no finfo (nor globals)
    den = den.clamp_(min=2.2250738585072014e-308 if den.dtype == torch.float64 else 1.1754943508222875e-38)
    return num.div_(den) if num.dtype == den.dtype else num / den


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU of ``xyxy`` boxes: ``[..., N, 4] x [..., M, 4] -> [..., N, M]`` in [0, 1]."""
    inter, union = _inter_union(boxes1, boxes2)
    return _safe_div_(inter, union)


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU of ``xyxy`` boxes: ``[..., N, M]`` in [-1, 1]."""
    inter, union = _inter_union(boxes1, boxes2)
    enclosing = _pairwise_extent(boxes1, boxes2, inner=False)
    penalty = _safe_div_(enclosing - union, enclosing)
    return _safe_div_(inter, union) - penalty


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clamp ``xyxy`` boxes into an image of ``size = (height, width)``."""
    height, width = size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x, y), dim=-1).reshape(boxes.shape)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices (int64) of the ``xyxy`` boxes whose width and height are both ``>= min_size``."""
    widths = boxes[..., 2] - boxes[..., 0]
    heights = boxes[..., 3] - boxes[..., 1]
    return torch.where((widths >= min_size) & (heights >= min_size))[0]
