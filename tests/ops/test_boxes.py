"""visionkit.ops.boxes against torchvision.ops, plus IoU properties."""

from __future__ import annotations

import pytest
import torch
import torchvision.ops as tvops
from hypothesis import given, settings
from hypothesis import strategies as st

from visionkit.ops import (
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    generalized_box_iou,
    remove_small_boxes,
)

from ._helpers import assert_close, boxes_strategy, random_boxes

SHAPES = [(0, 0), (0, 5), (7, 0), (1, 1), (13, 29), (64, 50)]
FORMATS = ["xyxy", "xywh", "cxcywh"]


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
@pytest.mark.parametrize("n", [0, 1, 37])
def test_box_convert_matches_torchvision(device, in_fmt, out_fmt, n):
    boxes = box_convert(random_boxes(n, seed=n, device=device, degenerate=0.2), "xyxy", in_fmt)
    ours = box_convert(boxes, in_fmt, out_fmt)
    assert_close(ours, tvops.box_convert(boxes, in_fmt, out_fmt))
    assert ours.device == boxes.device
    assert_close(box_convert(ours, out_fmt, in_fmt), boxes, atol=1e-4)


def test_box_convert_leading_dims_and_copy():
    boxes = random_boxes(6, seed=1).reshape(2, 3, 4)
    assert_close(box_convert(boxes, "xyxy", "cxcywh"), tvops.box_convert(boxes, "xyxy", "cxcywh"))
    same = box_convert(boxes, "xyxy", "xyxy")
    assert same.data_ptr() != boxes.data_ptr()
    with pytest.raises(ValueError, match="box formats"):
        box_convert(boxes, "xyxy", "yxyx")


@pytest.mark.parametrize("n", [0, 1, 50])
def test_box_area_matches_torchvision(device, n):
    boxes = random_boxes(n, seed=n, device=device, degenerate=0.3)
    assert_close(box_area(boxes), tvops.box_area(boxes))
    half = boxes.half()
    assert_close(box_area(half), tvops.box_area(half))
    assert box_area(half).dtype == torch.float32


@pytest.mark.parametrize("n,m", SHAPES)
@pytest.mark.parametrize("degenerate", [0.0, 0.3])
def test_box_iou_and_giou_match_torchvision(device, n, m, degenerate):
    a = random_boxes(n, seed=n + 100, device=device, degenerate=degenerate)
    b = random_boxes(m, seed=m + 200, device=device, degenerate=degenerate)
    ours, theirs = box_iou(a, b), tvops.box_iou(a, b)
    assert ours.shape == (n, m)
    # The only difference: boxes with zero-area union get 0 here, NaN in torchvision.
    nan = torch.isnan(theirs)
    assert_close(ours, torch.where(nan, 0.0, theirs))
    assert (ours[nan] == 0).all()

    ours, theirs = generalized_box_iou(a, b), tvops.generalized_box_iou(a, b)
    assert ours.shape == (n, m)
    # Zero-area union: IoU 0, so GIoU = -1 (or 0 if the enclosing box is empty too).
    nan = torch.isnan(theirs)
    assert_close(ours[~nan], theirs[~nan])
    assert ((ours[nan] == 0) | (ours[nan] == -1)).all()


def test_iou_of_coincident_degenerate_boxes_is_zero_not_nan():
    points = torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 9.0]])
    assert torch.isnan(tvops.box_iou(points, points)).any()
    assert torch.equal(box_iou(points, points), torch.zeros(2, 2))
    assert not torch.isnan(generalized_box_iou(points, points)).any()


def test_box_iou_batched_and_integer_inputs():
    a = random_boxes(12, seed=3).reshape(3, 4, 4)
    b = random_boxes(15, seed=4).reshape(3, 5, 4)
    assert_close(box_iou(a, b), tvops.box_iou(a, b))
    ia, ib = a.round().int(), b.round().int()
    assert_close(box_iou(ia, ib), tvops.box_iou(ia, ib))


@pytest.mark.parametrize("n", [0, 1, 40])
def test_clip_boxes_to_image_matches_torchvision(device, n):
    boxes = random_boxes(n, seed=n, device=device, size=300.0) - 50.0
    for size in [(120, 200), (1, 1), (0, 0)]:
        assert_close(clip_boxes_to_image(boxes, size), tvops.clip_boxes_to_image(boxes, size))
    nested = boxes.reshape(-1, 1, 4).expand(-1, 3, 4)
    assert_close(
        clip_boxes_to_image(nested, (90, 80)), tvops.clip_boxes_to_image(nested, (90, 80))
    )


@pytest.mark.parametrize("n", [0, 1, 60])
def test_remove_small_boxes_matches_torchvision(device, n):
    boxes = random_boxes(n, seed=n, device=device, degenerate=0.3)
    for min_size in [0.0, 1e-2, 5.0, 40.0]:
        keep = remove_small_boxes(boxes, min_size)
        assert keep.dtype == torch.int64
        assert torch.equal(keep, tvops.remove_small_boxes(boxes, min_size))


@settings(max_examples=50, deadline=None)
@given(boxes_strategy(), boxes_strategy())
def test_iou_symmetric_and_bounded(a, b):
    iou = box_iou(a, b)
    assert torch.equal(iou, box_iou(b, a).T)
    assert ((iou >= 0) & (iou <= 1)).all()
    giou = generalized_box_iou(a, b)
    assert torch.allclose(giou, generalized_box_iou(b, a).T)
    assert ((giou >= -1 - 1e-6) & (giou <= iou + 1e-6)).all()


@settings(max_examples=50, deadline=None)
@given(boxes_strategy(min_n=1, min_wh=0.5))
def test_iou_with_itself_is_one(boxes):
    assert torch.allclose(box_iou(boxes, boxes).diagonal(), torch.ones(len(boxes)))


@settings(max_examples=50, deadline=None)
@given(boxes_strategy(), st.sampled_from(FORMATS), st.sampled_from(FORMATS))
def test_box_convert_round_trip(boxes, in_fmt, out_fmt):
    there = box_convert(box_convert(boxes, "xyxy", in_fmt), in_fmt, out_fmt)
    back = box_convert(box_convert(there, out_fmt, in_fmt), in_fmt, "xyxy")
    assert torch.allclose(back, boxes, atol=1e-4)
