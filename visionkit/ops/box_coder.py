"""R-CNN box regression targets: boxes <-> deltas (tx, ty, tw, th).

For a reference box with centre (x, y) and size (w, h) (the anchor or proposal, ``xyxy`` pixels)
and a target box (x*, y*, w*, h*)::

    tx = wx (x* - x) / w    ty = wy (y* - y) / h    tw = ww log(w* / w)    th = wh log(h* / h)

``decode`` inverts this, clamping tw/th (after dividing by the weights) at ``bbox_xform_clip`` so
``exp`` cannot overflow. Deltas may be class-specific: ``[N, 4 * K]`` holds K groups of 4.
Same semantics as ``torchvision.models.detection._utils.BoxCoder``; degenerate (zero-size)
reference boxes give inf/NaN deltas there as here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class BoxCoder:
    """Encode boxes as (tx, ty, tw, th) deltas relative to reference boxes, and decode them back."""

    def __init__(
        self,
        weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        bbox_xform_clip: float = math.log(1000.0 / 16),
    ) -> None:
        """Weights (wx, wy, ww, wh) scale the deltas: (10, 10, 5, 5) for RoI heads, ones for RPN."""
        if len(weights) != 4:
            raise ValueError(f"BoxCoder needs 4 weights (wx, wy, ww, wh), got {weights}")
        self.weights = (float(weights[0]), float(weights[1]), float(weights[2]), float(weights[3]))
        self.bbox_xform_clip = bbox_xform_clip

    @torch.jit.unused
    def __repr__(self) -> str:
        return f"BoxCoder(weights={self.weights}, bbox_xform_clip={self.bbox_xform_clip:.4f})"

    def encode(self, reference_boxes: list[Tensor], proposals: list[Tensor]) -> list[Tensor]:
        """Per image: deltas ``[N_i, 4]`` that take ``proposals[i]`` onto ``reference_boxes[i]``."""
        counts = [b.shape[0] for b in reference_boxes]
        targets = self.encode_single(torch.cat(reference_boxes), torch.cat(proposals))
        return list(targets.split(counts, 0))

    def encode_single(self, reference_boxes: Tensor, proposals: Tensor) -> Tensor:
        """Deltas ``[N, 4]`` that take each proposal onto its (ground-truth) reference box."""
        wx, wy, ww, wh = self.weights
        px1, py1, px2, py2 = proposals.unsqueeze(-1).unbind(1)
        gx1, gy1, gx2, gy2 = reference_boxes.unsqueeze(-1).unbind(1)

        p_w = px2 - px1
        p_h = py2 - py1
        p_cx = px1 + 0.5 * p_w
        p_cy = py1 + 0.5 * p_h
        g_w = gx2 - gx1
        g_h = gy2 - gy1
        g_cx = gx1 + 0.5 * g_w
        g_cy = gy1 + 0.5 * g_h

        dx = wx * (g_cx - p_cx) / p_w
        dy = wy * (g_cy - p_cy) / p_h
        dw = ww * torch.log(g_w / p_w)
        dh = wh * torch.log(g_h / p_h)
        return torch.cat((dx, dy, dw, dh), dim=1)

    def decode(self, rel_codes: Tensor, boxes: list[Tensor]) -> Tensor:
        """Boxes ``[sum N_i, K, 4]`` from deltas ``[sum N_i, 4 * K]`` and per-image references."""
        if not torch.jit.is_scripting() and not isinstance(boxes, (list, tuple)):
            raise TypeError("BoxCoder.decode takes the reference boxes as a list (one per image)")
        concat = torch.cat(boxes, dim=0)
        total = concat.shape[0]
        num_codes = rel_codes.numel() // total if total > 0 else rel_codes.shape[-1]
        rel_codes = rel_codes.reshape(total, num_codes)
        return self.decode_single(rel_codes, concat).reshape(total, num_codes // 4, 4)

    def decode_single(self, rel_codes: Tensor, boxes: Tensor) -> Tensor:
        """Boxes ``[N, 4 * K]`` (``xyxy``) from deltas ``[N, 4 * K]`` and references ``[N, 4]``."""
        boxes = boxes.to(rel_codes.dtype)
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        ctr_x = (boxes[:, 0] + 0.5 * widths)[:, None]
        ctr_y = (boxes[:, 1] + 0.5 * heights)[:, None]
        widths = widths[:, None]
        heights = heights[:, None]

        wx, wy, ww, wh = self.weights
        dx = rel_codes[:, 0::4] / wx
        dy = rel_codes[:, 1::4] / wy
        dw = (rel_codes[:, 2::4] / ww).clamp(max=self.bbox_xform_clip)
        dh = (rel_codes[:, 3::4] / wh).clamp(max=self.bbox_xform_clip)

        cx = dx * widths + ctr_x
        cy = dy * heights + ctr_y
        half_w = 0.5 * (torch.exp(dw) * widths)
        half_h = 0.5 * (torch.exp(dh) * heights)
        decoded = torch.stack((cx - half_w, cy - half_h, cx + half_w, cy + half_h), dim=2)
        return decoded.flatten(1)
