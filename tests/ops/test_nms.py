"""visionkit.ops NMS against torchvision.ops and the pure-PyTorch reference, plus properties;
Soft-NMS against the paper's algorithm written out."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.ops as tvops
from hypothesis import given, settings
from hypothesis import strategies as st

from visionkit.ops import (
    batched_nms,
    batched_soft_nms,
    box_iou,
    nms,
    nms_reference,
)

from ._helpers import boxes_strategy, random_boxes


def _scores(n: int, seed: int, device) -> torch.Tensor:
    """Distinct scores in (0, 1] (ties would make the kept order implementation-defined)."""
    g = torch.Generator().manual_seed(seed)
    return ((torch.randperm(n, generator=g).float() + 1) / max(n, 1)).to(device)


@pytest.mark.parametrize("n", [0, 1, 2, 60, 400])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_torchvision_and_reference(device, n, threshold):
    boxes = random_boxes(n, seed=n, device=device, size=150.0, degenerate=0.1)
    scores = _scores(n, seed=n + 1, device=device)
    keep = nms(boxes, scores, threshold)
    assert keep.dtype == torch.int64 and keep.device == boxes.device
    assert torch.equal(keep, tvops.nms(boxes, scores, threshold))
    assert torch.equal(keep, nms_reference(boxes, scores, threshold))


@pytest.mark.parametrize(
    "n,num_classes",
    [(0, 3), (1, 1), (300, 5), (900, 1), (1500, 80), (4000, 80), (1200, 3)],
)
@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_batched_nms_matches_torchvision(device, n, num_classes, threshold):
    # Sizes on both sides of the switch between one offset call and per-class calls.
    boxes = random_boxes(n, seed=n, device=device, size=300.0, degenerate=0.05)
    scores = _scores(n, seed=n + 1, device=device)
    g = torch.Generator().manual_seed(n + 2)
    idxs = torch.randint(0, num_classes, (n,), generator=g).to(device)
    keep = batched_nms(boxes, scores, idxs, threshold)
    assert keep.dtype == torch.int64 and keep.device == boxes.device
    assert torch.equal(keep, tvops.batched_nms(boxes, scores, idxs, threshold))


def _per_class_reference(boxes, scores, idxs, threshold):
    """Batched NMS by its definition: `nms_reference` within each class (IoU in float64)."""
    boxes = boxes.double()
    kept = [torch.empty(0, dtype=torch.int64)]
    for c in idxs.unique():
        members = torch.where(idxs == c)[0]
        kept.append(members[nms_reference(boxes[members], scores[members], threshold)])
    kept = torch.cat(kept)
    return kept[scores[kept].argsort(descending=True)]


@pytest.mark.parametrize("n", [200, 2000])  # one shifted call / one call per class
def test_batched_nms_equals_per_class_reference(n):
    boxes = random_boxes(n, seed=0, size=300.0, degenerate=0.05)
    scores = _scores(n, seed=1, device="cpu")
    idxs = torch.randint(0, 7, (n,), generator=torch.Generator().manual_seed(2)) * 3 - 5
    keep = batched_nms(boxes, scores, idxs, 0.5)
    assert torch.equal(keep, _per_class_reference(boxes, scores, idxs, 0.5))


def test_batched_nms_keeps_classes_apart_where_torchvision_float32_shift_does_not(device):
    # Unclipped boxes below -1: torchvision's shift by max + 1 = -1 overlaps the classes.
    boxes = torch.tensor([[-10.0, -10.0, -2.0, -2.0], [-10.0, -10.0, -2.0, -2.0]], device=device)
    scores = torch.tensor([0.9, 0.8], device=device)
    labels = torch.tensor([0, 1], device=device)
    assert tvops.batched_nms(boxes, scores, labels, 0.5).tolist() == [0]
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == [0, 1]
    # A box thinner than float32's spacing at the shift collapses in torchvision's shift.
    boxes = torch.tensor([[0.0, 0.0, 1.0, 31.0], [0.0, 0.0, 1.0, 1e-6], [0.0, 0.0, 5.0, 5.0]],
                         device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    labels = torch.tensor([1, 1, 0], device=device)
    assert tvops.batched_nms(boxes, scores, labels, 0.0).tolist() == [0, 1, 2]
    assert batched_nms(boxes, scores, labels, 0.0).tolist() == [0, 2]


def _check_nms_result(boxes, scores, idxs, keep, threshold):
    """Subset, sorted by score, kept pairs of one class below the threshold, rest suppressed."""
    n = len(boxes)
    assert keep.dtype == torch.int64
    assert len(set(keep.tolist())) == len(keep) and ((keep >= 0) & (keep < n)).all()
    assert (scores[keep][1:] <= scores[keep][:-1]).all()
    iou = box_iou(boxes, boxes)
    same_class = idxs[:, None] == idxs[None, :]
    kept_iou = torch.where(same_class, iou, 0)[keep][:, keep]
    assert (kept_iou.triu(diagonal=1) <= threshold).all()
    # Every dropped box overlaps a higher-scoring kept box of its class by more than threshold.
    dropped = torch.ones(n, dtype=torch.bool)
    dropped[keep] = False
    for i in torch.where(dropped)[0].tolist():
        over = (iou[i, keep] > threshold) & same_class[i, keep] & (scores[keep] > scores[i])
        assert over.any()


@settings(max_examples=50, deadline=None)
@given(
    boxes_strategy(max_n=30),
    st.integers(0, 2**31 - 1),
    st.sampled_from([0.0, 0.2, 0.5, 0.8]),
    st.integers(1, 4),
)
def test_nms_properties(boxes, seed, threshold, num_classes):
    n = len(boxes)
    scores = _scores(n, seed, "cpu")
    keep = nms(boxes, scores, threshold)
    _check_nms_result(boxes, scores, torch.zeros(n, dtype=torch.int64), keep, threshold)
    assert torch.equal(keep, nms_reference(boxes, scores, threshold))

    idxs = torch.randint(0, num_classes, (n,), generator=torch.Generator().manual_seed(seed))
    keep = batched_nms(boxes, scores, idxs, threshold)
    _check_nms_result(boxes.double(), scores, idxs, keep, threshold)
    assert torch.equal(keep, _per_class_reference(boxes, scores, idxs, threshold))


def _soft_nms_paper(boxes, scores, classes, method, sigma, nt, min_score):
    """Bodla et al. 2017, Algorithm 1, within each class: pick the best, lower the rest, repeat
    until nothing is left; boxes whose score falls below ``min_score`` leave. Plain Python."""
    b, s, c = boxes.double().tolist(), scores.double().tolist(), classes.tolist()
    live = [i for i in range(len(s)) if s[i] >= min_score]
    picks = []
    while live:
        m = max(live, key=lambda i: s[i])
        picks.append((m, s[m]))
        live.remove(m)
        for i in list(live):
            if c[i] != c[m]:
                continue
            iou = box_iou(torch.tensor([b[m]], dtype=torch.float64),
                          torch.tensor([b[i]], dtype=torch.float64)).item()
            if method == "gaussian":
                s[i] *= math.exp(-iou * iou / sigma)
            elif iou > nt:
                s[i] *= 1 - iou
            if s[i] < min_score:
                live.remove(i)
    return picks


@pytest.mark.parametrize("method", ["gaussian", "linear"])
@pytest.mark.parametrize("n, num_classes, max_kept", [(0, 1, None), (1, 1, None), (80, 1, None),
                                                      (150, 3, None), (150, 3, 20)])
def test_soft_nms_is_the_paper_s_algorithm(method, n, num_classes, max_kept):
    boxes = random_boxes(n, seed=n)
    scores = _scores(n, n + 1, "cpu")
    classes = torch.randint(0, num_classes, (n,), generator=torch.Generator().manual_seed(n))
    keep, lowered = batched_soft_nms(boxes, scores, classes, method=method, sigma=0.5,
                                     iou_threshold=0.3, score_threshold=0.01, max_kept=max_kept)
    paper = _soft_nms_paper(boxes, scores, classes, method, 0.5, 0.3, 0.01)[:max_kept]
    assert keep.dtype == torch.int64 and lowered.dtype == scores.dtype
    assert keep.tolist() == [i for i, _ in paper]
    expected = torch.tensor([v for _, v in paper], dtype=torch.float64).reshape(-1)
    torch.testing.assert_close(lowered.double(), expected, rtol=1e-6, atol=1e-7)
    assert (lowered <= scores[keep]).all() and (lowered[1:] <= lowered[:-1]).all()


def test_soft_nms_lowers_an_overlapping_box_that_nms_drops():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    classes = torch.tensor([1, 1, 1, 2])  # box 3 equals box 0 but is another class
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 2, 3]
    iou = 90 / 110
    for method, factor in (("gaussian", math.exp(-iou * iou / 0.5)), ("linear", 1 - iou)):
        keep, lowered = batched_soft_nms(boxes, scores, classes, method=method)
        assert keep.tolist() == [0, 2, 3, 1]
        assert lowered.tolist() == pytest.approx([0.9, 0.7, 0.6, 0.8 * factor])
    # below score_threshold once lowered: dropped; max_kept: the best ones only
    assert batched_soft_nms(boxes, scores, classes, score_threshold=0.3)[0].tolist() == [0, 2, 3]
    assert batched_soft_nms(boxes, scores, classes, max_kept=2)[0].tolist() == [0, 2]
    with pytest.raises(ValueError, match="soft-NMS method"):
        batched_soft_nms(boxes, scores, classes, method="hard")
