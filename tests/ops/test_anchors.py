"""visionkit.ops.AnchorGenerator against torchvision's detection AnchorGenerator."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.image_list import ImageList

from visionkit.ops import AnchorGenerator, cell_anchors

from ._helpers import assert_close

FPN_SIZES = ((32,), (64,), (128,), (256,), (512,))
CONFIGS = [
    # (sizes, aspect_ratios, feature strides) — single level (Faster R-CNN C4) and FPN.
    (((128, 256, 512),), ((0.5, 1.0, 2.0),), (16,)),
    ((64, 128), (0.5, 1.0, 2.0), (8, 16)),  # flat: one size per level, ratios shared
    (FPN_SIZES, ((0.5, 1.0, 2.0),) * 5, (4, 8, 16, 32, 64)),
    (((40, 60),), ((0.7, 1.3),), (10,)),  # non-integer anchor corners (rounded)
]


def _features(batch: torch.Tensor, strides, device) -> list[torch.Tensor]:
    h, w = batch.shape[-2:]
    return [torch.zeros(batch.shape[0], 2, -(-h // s), -(-w // s), device=device) for s in strides]


@pytest.mark.parametrize("sizes,ratios,strides", CONFIGS)
@pytest.mark.parametrize("batch_shape", [(1, 3, 224, 224), (2, 3, 480, 640), (3, 3, 97, 301)])
def test_matches_torchvision(device, sizes, ratios, strides, batch_shape):
    batch = torch.zeros(batch_shape, device=device)
    feats = _features(batch, strides, device)
    image_sizes = [tuple(batch_shape[-2:])] * batch_shape[0]
    theirs = TVAnchorGenerator(sizes, ratios)(ImageList(batch, image_sizes), feats)
    ours_gen = AnchorGenerator(sizes, ratios)
    ours = ours_gen(batch, feats)
    assert len(ours) == len(theirs) == batch_shape[0]
    for o, t in zip(ours, theirs, strict=True):
        assert o.device == batch.device and o.dtype == feats[0].dtype
        assert_close(o, t)
    k = ours_gen.num_anchors_per_location()
    assert k == TVAnchorGenerator(sizes, ratios).num_anchors_per_location()
    locations = [f.shape[-2] * f.shape[-1] for f in feats]
    assert ours[0].shape[0] == sum(ki * n for ki, n in zip(k, locations, strict=True))
    # The shape alone, a dict of feature maps, or torchvision's ImageList gives the same anchors.
    named = {f"p{i}": f for i, f in enumerate(feats)}
    image_list = ImageList(batch, image_sizes)
    for again in (ours_gen(batch.shape, feats), ours_gen(tuple(batch_shape), named),
                  ours_gen(image_list, feats)):
        assert all(torch.equal(a, b) for a, b in zip(again, ours, strict=True))


def test_cell_anchors_match_torchvision():
    tv = TVAnchorGenerator()
    for sizes, ratios in [((128, 256, 512), (0.5, 1.0, 2.0)), ((33, 45), (0.3, 1.7, 4.0))]:
        assert_close(cell_anchors(sizes, ratios), tv.generate_anchors(list(sizes), list(ratios)))
    # k = |sizes| * |ratios|, ratio = height / width, area ~ size**2.
    base = cell_anchors((100,), (0.25, 1.0, 4.0))
    w, h = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
    assert w.tolist() == [200.0, 100.0, 50.0] and h.tolist() == [50.0, 100.0, 200.0]


def test_grid_cache_reused_and_bounded():
    gen = AnchorGenerator(((32,), (64,)), ((0.5, 1.0, 2.0),) * 2, cache_size=2)
    batch = torch.zeros(1, 3, 64, 96)
    feats = _features(batch, (8, 16), "cpu")
    first = gen(batch, feats)[0]
    assert len(gen._cache) == 1
    first.add_(1.0)  # callers get copies: the cache is not modified through them
    assert torch.equal(gen(batch, feats)[0], first - 1.0)
    assert len(gen._cache) == 1
    for size in [(32, 32), (128, 128)]:
        other = torch.zeros(1, 3, *size)
        gen(other, _features(other, (8, 16), "cpu"))
    assert len(gen._cache) == 2
    double = gen(batch, [f.double() for f in feats])[0]
    assert double.dtype == torch.float64


def test_empty_feature_map_and_level_mismatch():
    gen = AnchorGenerator(((32,),), ((1.0,),))
    assert gen(torch.zeros(2, 3, 0, 0), [torch.zeros(2, 4, 0, 0)])[0].shape == (0, 4)
    assert gen(torch.zeros(2, 3, 64, 64), [torch.zeros(2, 4, 0, 5)])[1].shape == (0, 4)
    with pytest.raises(ValueError, match="feature maps"):
        gen(torch.zeros(1, 3, 64, 64), [torch.zeros(1, 4, 8, 8)] * 2)
    with pytest.raises(ValueError, match="levels"):
        AnchorGenerator(((32,), (64,)), ((0.5,), (1.0,), (2.0,)))
