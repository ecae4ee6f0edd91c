"""Assign each prediction (anchor or proposal) to at most one ground-truth box by IoU.

Input: an ``[M, N]`` quality matrix (usually ``box_iou(gt_boxes, predictions)``), ground truth
along rows. Output: int64 ``[N]`` with, for each prediction, its ground-truth index in
``[0, M)`` when its best IoU is ``>= high_threshold``, else

- ``BETWEEN_THRESHOLDS = -2`` (ignored) when the best IoU is in ``[low_threshold, high_threshold)``,
- ``BELOW_LOW_THRESHOLD = -1`` (background) when it is ``< low_threshold``.

Typical thresholds: RPN 0.7 / 0.3 with ``allow_low_quality_matches=True`` (`Matcher.for_rpn`);
RoI heads 0.5 / 0.5 (`Matcher.for_roi_heads`). Fast R-CNN's background range [0.1, 0.5) is
``Matcher(0.5, 0.5, background_low_threshold=0.1)`` (``Matcher.for_roi_heads(0.1)``): IoU below
0.1 becomes ignored (-2) instead of background.

Same results as ``torchvision.models.detection._utils.Matcher``, except for empty inputs, which
torchvision rejects: here no ground truth makes every prediction background (-1), which is what
torchvision's RoI heads get by padding with a dummy zero box, and no predictions give ``[0]``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Matcher:
    """Label predictions with a ground-truth index, -1 (background) or -2 (ignored) by IoU."""

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(
        self,
        high_threshold: float,
        low_threshold: float,
        allow_low_quality_matches: bool = False,
        background_low_threshold: float | None = None,
    ) -> None:
        """Thresholds as in the module docstring; low-quality matches keep each gt's best."""
        if low_threshold > high_threshold:
            raise ValueError(
                f"low_threshold {low_threshold} exceeds high_threshold {high_threshold}"
            )
        if background_low_threshold is not None and background_low_threshold > low_threshold:
            raise ValueError(
                f"background_low_threshold {background_low_threshold} exceeds "
                f"low_threshold {low_threshold}"
            )
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches
        self.background_low_threshold = background_low_threshold

    @classmethod
    def for_rpn(cls) -> Matcher:
        """The RPN's matcher: object at IoU >= 0.7, background below 0.3, best anchors kept."""
        return cls(0.7, 0.3, True, None)

    @classmethod
    def for_roi_heads(cls, background_low_threshold: float | None = None) -> Matcher:
        """The RoI heads' matcher: object at IoU >= 0.5, else background (0.1 for Fast R-CNN)."""
        return cls(0.5, 0.5, False, background_low_threshold)

    @torch.jit.unused
    def __repr__(self) -> str:
        return (
            f"Matcher(high_threshold={self.high_threshold}, low_threshold={self.low_threshold}, "
            f"allow_low_quality_matches={self.allow_low_quality_matches}, "
            f"background_low_threshold={self.background_low_threshold})"
        )

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        """Matches ``[N]`` (int64) for an ``[M ground truth, N predictions]`` quality matrix."""
        # BELOW_LOW_THRESHOLD and BETWEEN_THRESHOLDS (torch.jit.script reads no class attributes)
        below_low, between = -1, -2
        num_gt, num_pred = match_quality_matrix.shape
        device = match_quality_matrix.device
        if num_pred == 0:
            return torch.empty(0, dtype=torch.int64, device=device)
        if num_gt == 0:
            return torch.full(
                (num_pred,), below_low, dtype=torch.int64, device=device
            )

        best_quality, matches = match_quality_matrix.max(dim=0)
        best_gt = matches.clone() if self.allow_low_quality_matches else None

        matches[best_quality < self.high_threshold] = between
        matches[best_quality < self.low_threshold] = below_low
        background_low_threshold = self.background_low_threshold
        if background_low_threshold is not None:
            matches[best_quality < background_low_threshold] = between

        if best_gt is not None:
            # For each ground truth, its highest-quality predictions (ties included) keep their
            # best ground truth even below the thresholds, so no ground truth goes unmatched.
            best_per_gt = match_quality_matrix.max(dim=1).values
            _, preds = torch.where(match_quality_matrix == best_per_gt[:, None])
            matches[preds] = best_gt[preds]
        return matches
