"""SelectiveSearch: valid, deterministic, ranked boxes that find real objects; the grouping itself."""

import cv2
import numpy as np
import pytest
import torch

from visionkit.detection import SelectiveSearch
from visionkit.detection.selective_search import (
    colour_space,
    group_hierarchically,
    segment_regions,
    texture_bins,
)
from visionkit.ops import box_iou


def scene(height=120, width=160, box=(40, 30, 110, 90), seed=0):
    """Noisy grey background with one saturated rectangle at ``box`` (xyxy, end exclusive)."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(110, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = (220, 40, 30)
    return image


def best_iou(boxes, box):
    return float(box_iou(torch.tensor([box], dtype=torch.float32), torch.from_numpy(boxes)).max())


def test_boxes_are_valid_ranked_and_deterministic():
    image = scene()
    boxes = SelectiveSearch(max_proposals=50)(image)
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert 1 <= len(boxes) <= 50
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert (boxes >= 0).all() and (boxes[:, 0::2] <= 160).all() and (boxes[:, 1::2] <= 120).all()
    assert len(np.unique(boxes, axis=0)) == len(boxes)  # no duplicates
    np.testing.assert_array_equal(boxes, SelectiveSearch(max_proposals=50)(image))
    # the cap keeps the best-ranked prefix of the full list
    np.testing.assert_array_equal(boxes, SelectiveSearch(max_proposals=2000)(image)[:50])


def test_finds_the_object_exactly():
    boxes = SelectiveSearch()(scene())
    assert best_iou(boxes, (40, 30, 110, 90)) > 0.95


def test_large_images_are_searched_smaller_and_mapped_back():
    image = scene(600, 800, box=(200, 150, 550, 450))
    boxes = SelectiveSearch(max_side=200)(image)
    assert (boxes[:, 0::2] <= 800).all() and (boxes[:, 1::2] <= 600).all()
    assert boxes[:, 2].max() > 700  # full-size coordinates, not the 200 px search size
    assert best_iou(boxes, (200, 150, 550, 450)) > 0.9


def test_quality_mode_gives_at_least_what_fast_gives():
    image = scene(48, 64, box=(10, 8, 40, 30))
    fast, quality = SelectiveSearch("fast")(image), SelectiveSearch("quality")(image)
    assert len(quality) >= len(fast)
    assert best_iou(quality, (10, 8, 40, 30)) > 0.9


def test_hierarchy_has_every_merge_and_ends_with_the_whole_image():
    image = scene(60, 80, box=(20, 15, 55, 45))
    converted = colour_space(image, "hsv")
    regions = segment_regions(converted, texture_bins(converted), 50, 0.8)
    count = len(regions.size)
    assert count >= 2 and regions.size.sum() == 60 * 80
    np.testing.assert_allclose(regions.colour.sum(1), 1.0)
    np.testing.assert_allclose(regions.texture.sum(1), 1.0)
    boxes = group_hierarchically(regions, "CTSF", 60 * 80)
    assert len(boxes) == 2 * count - 1  # a connected grid merges down to one region
    np.testing.assert_array_equal(boxes[-1], [0, 0, 80, 60])


def test_bad_input_and_settings():
    with pytest.raises(ValueError, match="RGB uint8 HWC"):
        SelectiveSearch()(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8 HWC"):
        SelectiveSearch()(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="mode must be one of"):
        SelectiveSearch("slow")
    assert SelectiveSearch("quality", 100).settings["mode"] == "quality"


def test_default_mode_boxes_each_of_touching_objects_of_one_colour():
    """What the "recall" mode is for (blood cells): each touching disc gets its own box."""
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(200, 8, (120, 200, 3)), 0, 255).astype(np.uint8)
    for cx in (40, 80, 120, 160):  # four discs of radius 20 in a row, touching
        cv2.circle(image, (cx, 60), 20, (170, 90, 100), -1)
    search = SelectiveSearch()
    assert search.settings["mode"] == "recall"
    boxes = search(image)
    assert min(best_iou(boxes, (cx - 20, 40, cx + 21, 81)) for cx in (40, 80, 120, 160)) > 0.85
