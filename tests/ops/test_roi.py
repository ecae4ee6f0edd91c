"""visionkit.ops RoI pooling against torchvision.ops, plus pooling properties."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
import torchvision.ops as tvops
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops._utils import convert_boxes_to_roi_format
from torchvision.ops.poolers import LevelMapper

from visionkit.benchmarks.ops import sweep_rois
from visionkit.ops import MultiScaleRoIAlign, boxes_to_rois, fpn_levels, roi_align, roi_pool
from visionkit.ops.roi_align_cpu import roi_align_gather

from ._helpers import assert_close, random_boxes

IMAGE = (200, 272)  # (height, width) of the images the boxes live in


def _inputs(counts, scale, device, channels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = round(IMAGE[0] * scale), round(IMAGE[1] * scale)
    feats = torch.randn(len(counts), channels, h, w, generator=g).to(device)
    boxes = [random_boxes(c, seed=seed + i, device=device, size=220.0, degenerate=0.1) - 10.0
             for i, c in enumerate(counts)]  # some reach outside the image, some are flat
    return feats, boxes


def test_boxes_to_rois_matches_torchvision(device):
    boxes = [random_boxes(c, seed=c, device=device) for c in (3, 0, 5)]
    rois = boxes_to_rois(boxes)
    assert_close(rois, convert_boxes_to_roi_format(boxes))
    assert boxes_to_rois(rois) is rois
    with pytest.raises(ValueError, match=r"\[K, 5\]"):
        boxes_to_rois(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="image 1"):
        boxes_to_rois([torch.zeros(2, 4), torch.zeros(2, 5)])
    with pytest.raises(ValueError, match="empty list"):
        boxes_to_rois([])


@pytest.mark.parametrize("counts", [[0], [12], [5, 0, 9]])
@pytest.mark.parametrize("output_size", [7, (3, 5), (1, 1)])
@pytest.mark.parametrize("scale", [1.0, 0.25, 1 / 16])
def test_roi_pool_matches_torchvision(device, counts, output_size, scale):
    feats, boxes = _inputs(counts, scale, device)
    ours = roi_pool(feats, boxes, output_size, scale)
    theirs = tvops.roi_pool(feats, boxes, output_size, scale)
    assert ours.device == feats.device
    assert_close(ours, theirs)
    assert_close(roi_pool(feats, boxes_to_rois(boxes), output_size, scale), theirs)


@pytest.mark.parametrize("counts", [[0], [12], [5, 0, 9]])
@pytest.mark.parametrize("output_size", [7, (3, 5)])
@pytest.mark.parametrize("scale", [1.0, 0.25, 1 / 16])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2, 3])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_matches_torchvision(device, counts, output_size, scale, sampling_ratio,
                                       aligned):
    feats, boxes = _inputs(counts, scale, device)
    feats.requires_grad_()
    ours = roi_align(feats, boxes, output_size, scale, sampling_ratio, aligned)
    theirs = tvops.roi_align(feats, boxes, output_size, scale, sampling_ratio, aligned)
    assert ours.device == feats.device
    assert_close(ours, theirs)
    if ours.numel():
        (grad_ours,) = torch.autograd.grad(ours.sum(), feats)
        (grad_theirs,) = torch.autograd.grad(theirs.sum(), feats)
        # a cell's gradient sums every sample of every RoI touching it (up to ~40 here), and
        # the CPU gather path sums in another order: float32 rounding of such sums, ~1e-6 relative
        torch.testing.assert_close(grad_ours, grad_theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cells", [2, 32])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_gather_one_gather_or_two_match_torchvision(cells, aligned, monkeypatch):
    # RoIs of up to `cells` cells of a stride-8 map, a fifth past its edge: both ways of gathering
    # give torchvision's RoIAlign and gradient; left to choose, small RoIs (sample rows shared)
    # take two gathers, large ones one without a gradient and two with one (training).
    g = torch.Generator().manual_seed(cells)
    feats = torch.randn(2, 16, 25, 34, generator=g, requires_grad=True)
    boxes = sweep_rois(300, cells, 25, 34, 1 / 8, g)
    rois = torch.cat((torch.randint(0, 2, (300, 1), generator=g).float(), boxes), dim=1)
    theirs = tvops.roi_align(feats, rois, 7, 1 / 8, 2, aligned)
    (grad_theirs,) = torch.autograd.grad(theirs.sum(), feats)
    calls = []
    gather = F.embedding_bag
    monkeypatch.setattr(F, "embedding_bag", lambda *a, **k: calls.append(1) or gather(*a, **k))
    for separable, gathers in ((True, 2), (False, 1), (None, 2)):
        calls.clear()
        ours = roi_align_gather(feats, rois, (7, 7), 1 / 8, 2, aligned, separable)
        assert len(calls) == gathers, separable
        assert_close(ours, theirs)
        (grad_ours,) = torch.autograd.grad(ours.sum(), feats)
        torch.testing.assert_close(grad_ours, grad_theirs, atol=1e-5, rtol=1e-5)
    calls.clear()
    with torch.no_grad():
        assert_close(roi_align_gather(feats, rois, (7, 7), 1 / 8, 2, aligned), theirs)
    assert len(calls) == (2 if cells == 2 else 1)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 12), st.integers(1, 12), st.integers(1, 12), st.integers(1, 12),
    st.integers(0, 2**31 - 1),
)
def test_roi_pool_of_whole_map_is_adaptive_max_pool(height, width, out_h, out_w, seed):
    feats = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(seed))
    whole = torch.tensor([[0.0, 0.0, width - 1.0, height - 1.0]])
    pooled = roi_pool(feats, [whole, whole], (out_h, out_w))
    assert torch.equal(pooled, F.adaptive_max_pool2d(feats, (out_h, out_w)))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_roi_align_of_whole_map_at_cell_centres_is_identity(height, width, seed):
    feats = torch.randn(1, 2, height, width, generator=torch.Generator().manual_seed(seed))
    whole = torch.tensor([[0.0, 0.0, float(width), float(height)]])
    out = roi_align(feats, [whole], (height, width), sampling_ratio=1, aligned=True)
    assert_close(out, feats)


def _pyramid(batch, device, names=("0", "1", "2", "3"), strides=(4, 8, 16, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = IMAGE
    feats = OrderedDict(
        (name, torch.randn(batch, 4, -(-h // s), -(-w // s), generator=g).to(device))
        for name, s in zip(names, strides, strict=True)
    )
    feats["pool"] = torch.randn(batch, 4, 4, 5, generator=g).to(device)
    return feats


@pytest.mark.parametrize("counts", [[0], [40], [25, 0, 30]])
@pytest.mark.parametrize("names", [["0", "1", "2", "3"], ["2"], ["1", "2"]])
@pytest.mark.parametrize("output_size,sampling_ratio", [(7, 2), ((14, 7), 0)])
def test_multiscale_roi_align_matches_torchvision(device, counts, names, output_size,
                                                  sampling_ratio):
    feats = _pyramid(len(counts), device)
    g = torch.Generator().manual_seed(sum(counts))
    boxes = []
    for c in counts:  # sizes from 2 to ~270 px so every FPN level gets RoIs
        xy = torch.rand(c, 2, generator=g) * 150
        wh = torch.exp(torch.rand(c, 2, generator=g) * 5) + 1
        boxes.append(torch.cat((xy, xy + wh), 1).to(device))
    shapes = [IMAGE, (180, 250), (200, 200)][: len(counts)]
    ours = MultiScaleRoIAlign(names, output_size, sampling_ratio)(feats, boxes, shapes)
    theirs = tvops.MultiScaleRoIAlign(names, output_size, sampling_ratio)(feats, boxes, shapes)
    assert ours.shape[0] == sum(counts) and ours.device == feats["0"].device
    assert_close(ours, theirs)


def test_multiscale_repr_is_torchvisions():
    for names, size, ratio in [(["0"], (7, 7), 2), (["0", "1", "2"], 5, -1)]:
        theirs = tvops.MultiScaleRoIAlign(names, size, ratio)
        assert repr(MultiScaleRoIAlign(names, size, ratio)) == repr(theirs)
    aligned = MultiScaleRoIAlign(["0"], 7, 2, aligned=True)  # what torchvision's pooler lacks
    assert repr(aligned) == ("MultiScaleRoIAlign(featmap_names=['0'], output_size=(7, 7), "
                             "sampling_ratio=2, aligned=True)")


def test_multiscale_scales_follow_each_call():
    # torchvision infers the scales once; here every call derives them from its inputs.
    pooler = MultiScaleRoIAlign(["0", "1"], 5, 2)
    boxes = [random_boxes(20, seed=1)]
    for size in [(128, 160), (256, 320)]:
        feats = {
            "0": torch.randn(1, 3, size[0] // 4, size[1] // 4),
            "1": torch.randn(1, 3, size[0] // 8, size[1] // 8),
        }
        expected = tvops.MultiScaleRoIAlign(["0", "1"], 5, 2)(feats, boxes, [size])
        assert_close(pooler(feats, boxes, [size]), expected)
    with pytest.raises(ValueError, match="none of"):
        pooler({"x": torch.zeros(1, 3, 8, 8)}, boxes, [(32, 32)])


def test_fpn_levels_match_torchvision_level_mapper(device):
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(500, 2, generator=g) * 100
    wh = torch.exp(torch.rand(500, 2, generator=g) * 7)
    boxes = torch.cat((xy, xy + wh), 1).to(device)
    # Boxes exactly on level borders: sqrt(area) = 224 * 2**k.
    borders = torch.tensor([[0.0, 0.0, 112.0, 112.0], [0.0, 0.0, 224.0, 224.0],
                            [0.0, 0.0, 448.0, 448.0], [0.0, 0.0, 56.0, 56.0]], device=device)
    boxes = torch.cat((boxes, borders))
    for k_min, k_max in [(2, 5), (3, 4), (4, 4)]:
        levels = fpn_levels(boxes, k_min, k_max)
        assert levels.dtype == torch.int64
        assert torch.equal(levels, LevelMapper(k_min, k_max)([boxes]))
    assert fpn_levels(borders, 2, 5).tolist() == [1, 2, 3, 0]  # k = 3, 4, 5, 2
