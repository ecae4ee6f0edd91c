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

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


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
    if in_fmt not in BOX_FORMATS or out_fmt not in BOX_FORMATS:
        raise ValueError(f"box formats must be among {BOX_FORMATS}, got {in_fmt!r} -> {out_fmt!r}")
    if in_fmt == out_fmt:
        return boxes.clone()
    xyxy = boxes if in_fmt == "xyxy" else _to_xyxy(boxes, in_fmt)
    return xyxy if out_fmt == "xyxy" else _from_xyxy(xyxy, out_fmt)


def box_area(boxes: Tensor) -> Tensor:
    """Area of each ``xyxy`` box: ``[..., N, 4] -> [..., N]``."""
    boxes = _upcast(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _inter_union(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise intersection and union areas, each ``[..., N, M]``."""
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    top_left = torch.max(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    bottom_right = torch.min(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = _upcast(bottom_right - top_left).clamp_(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter, union


def _safe_div_(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with 0 where ``den`` is 0 (``num`` is 0 there); may overwrite ``den``."""
    den = den if den.is_floating_point() else den.float()
    return num / den.clamp_(min=torch.finfo(den.dtype).tiny)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU of ``xyxy`` boxes: ``[..., N, 4] x [..., M, 4] -> [..., N, M]`` in [0, 1]."""
    inter, union = _inter_union(boxes1, boxes2)
    return _safe_div_(inter, union)


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU of ``xyxy`` boxes: ``[..., N, M]`` in [-1, 1]."""
    inter, union = _inter_union(boxes1, boxes2)
    top_left = torch.min(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    bottom_right = torch.max(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = _upcast(bottom_right - top_left).clamp_(min=0)
    enclosing = wh[..., 0] * wh[..., 1]
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
