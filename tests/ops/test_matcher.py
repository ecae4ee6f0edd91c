"""visionkit.ops.Matcher against torchvision's detection Matcher."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from torchvision.models.detection._utils import Matcher as TVMatcher

from visionkit.ops import Matcher, box_iou

from ._helpers import boxes_strategy, random_boxes

CONFIGS = [(0.7, 0.3, True), (0.7, 0.3, False), (0.5, 0.5, False), (0.5, 0.4, True)]


def _iou(num_gt: int, num_pred: int, seed: int, device) -> torch.Tensor:
    gt = random_boxes(num_gt, seed=seed, device=device, size=120.0)
    preds = random_boxes(num_pred, seed=seed + 1, device=device, size=120.0, degenerate=0.1)
    # Some predictions copy ground truth exactly, so there are IoU ties and perfect matches.
    k = min(num_gt, num_pred // 4)
    preds[:k] = gt[:k]
    return box_iou(gt, preds)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("num_gt,num_pred", [(1, 1), (1, 30), (5, 200), (20, 500), (40, 3)])
def test_matches_torchvision(device, config, num_gt, num_pred):
    iou = _iou(num_gt, num_pred, seed=num_gt * 7 + num_pred, device=device)
    ours = Matcher(*config)(iou)
    theirs = TVMatcher(*config)(iou)
    assert ours.dtype == torch.int64 and ours.device == iou.device
    assert torch.equal(ours, theirs)


def test_labels_and_thresholds():
    iou = torch.tensor([[0.9, 0.65, 0.35, 0.2, 0.05, 0.0]])
    assert Matcher(0.7, 0.3)(iou).tolist() == [0, -2, -2, -1, -1, -1]
    assert Matcher(0.5, 0.5)(iou).tolist() == [0, 0, -1, -1, -1, -1]
    fast_rcnn = Matcher(0.5, 0.5, background_low_threshold=0.1)
    assert fast_rcnn(iou).tolist() == [0, 0, -1, -1, -2, -2]
    assert Matcher.for_roi_heads(0.1)(iou).tolist() == [0, 0, -1, -1, -2, -2]
    assert Matcher.for_roi_heads()(iou).tolist() == [0, 0, -1, -1, -1, -1]
    rpn = Matcher.for_rpn()
    assert (rpn.high_threshold, rpn.low_threshold, rpn.allow_low_quality_matches) == (0.7, 0.3, True)
    assert Matcher.BELOW_LOW_THRESHOLD == -1 and Matcher.BETWEEN_THRESHOLDS == -2


def test_low_quality_matches_rescue_best_prediction_per_gt():
    iou = torch.tensor([[0.4, 0.1, 0.4], [0.0, 0.2, 0.1]])
    assert Matcher(0.7, 0.3, False)(iou).tolist() == [-2, -1, -2]
    # gt 0's best (0.4, a tie) and gt 1's best (0.2) keep their best ground truth.
    assert Matcher(0.7, 0.3, True)(iou).tolist() == [0, 1, 0]


def test_empty_inputs():
    # torchvision raises on both; here no gt means all background, no predictions an empty result.
    with pytest.raises(ValueError):
        TVMatcher(0.7, 0.3)(torch.zeros(0, 4))
    assert Matcher(0.7, 0.3, True)(torch.zeros(0, 4)).tolist() == [-1, -1, -1, -1]
    # Same as torchvision's RoI heads, which match against a dummy all-zero gt box then.
    dummy = box_iou(torch.zeros(1, 4), random_boxes(4, seed=0))
    assert TVMatcher(0.5, 0.5)(dummy).tolist() == [-1, -1, -1, -1]
    out = Matcher(0.7, 0.3, True)(torch.zeros(3, 0))
    assert out.shape == (0,) and out.dtype == torch.int64


def test_bad_thresholds():
    with pytest.raises(ValueError, match="low_threshold"):
        Matcher(0.3, 0.7)
    with pytest.raises(ValueError, match="background_low_threshold"):
        Matcher(0.5, 0.5, background_low_threshold=0.6)


@settings(max_examples=50, deadline=None)
@given(boxes_strategy(min_n=1), boxes_strategy(min_n=1))
def test_matches_torchvision_on_generated_boxes(gt, preds):
    iou = box_iou(gt, preds)
    for config in CONFIGS:
        ours = Matcher(*config)(iou)
        assert torch.equal(ours, TVMatcher(*config)(iou))
        assert ((ours >= -2) & (ours < len(gt))).all()
