"""visionkit.ops.BoxCoder against torchvision's detection BoxCoder, plus round trips."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection._utils import BoxCoder as TVBoxCoder

from visionkit.ops import BoxCoder

from ._helpers import assert_close, boxes_strategy, random_boxes

WEIGHTS = [(10.0, 10.0, 5.0, 5.0), (1.0, 1.0, 1.0, 1.0)]


def _jitter(boxes: torch.Tensor, seed: int) -> torch.Tensor:
    """Boxes near ``boxes`` (the kind of ground truth a proposal regresses to)."""
    g = torch.Generator().manual_seed(seed)
    noise = (torch.rand(boxes.shape, generator=g) - 0.5).to(boxes.device) * 20
    out = boxes + noise
    return torch.cat((out[:, :2], torch.max(out[:, 2:], out[:, :2] + 1)), dim=1)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("counts", [[0], [5], [3, 0, 11], [0, 0]])
def test_encode_matches_torchvision(device, weights, counts):
    proposals = [random_boxes(c, seed=i, device=device) for i, c in enumerate(counts)]
    gt = [_jitter(p, seed=i + 50) for i, p in enumerate(proposals)]
    ours = BoxCoder(weights).encode(gt, proposals)
    theirs = TVBoxCoder(weights).encode(gt, proposals)
    assert len(ours) == len(theirs) == len(counts)
    for o, t, c in zip(ours, theirs, counts, strict=True):
        assert o.shape == (c, 4)
        assert_close(o, t)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("num_classes", [1, 4])
@pytest.mark.parametrize("counts", [[6], [2, 9], [4, 0, 3]])
def test_decode_matches_torchvision(device, weights, num_classes, counts):
    boxes = [random_boxes(c, seed=c, device=device) for c in counts]
    g = torch.Generator().manual_seed(sum(counts))
    deltas = (torch.randn(sum(counts), 4 * num_classes, generator=g) * 2).to(device)
    deltas[0, 2] = 50.0  # beyond bbox_xform_clip once divided by the weight
    ours = BoxCoder(weights).decode(deltas, boxes)
    theirs = TVBoxCoder(weights).decode(deltas, boxes)
    assert ours.shape == (sum(counts), num_classes, 4)
    assert_close(ours, theirs)
    concat = torch.cat(boxes)
    assert_close(
        BoxCoder(weights).decode_single(deltas, concat),
        TVBoxCoder(weights).decode_single(deltas, concat),
    )


def test_decode_empty_keeps_class_dimension():
    coder = BoxCoder()
    out = coder.decode(torch.zeros(0, 12), [torch.zeros(0, 4)])
    assert out.shape == (0, 3, 4)  # torchvision gives [0, 12] here
    assert coder.decode_single(torch.zeros(0, 8), torch.zeros(0, 4)).shape == (0, 8)
    with pytest.raises(TypeError, match="list"):
        coder.decode(torch.zeros(1, 4), torch.zeros(1, 4))


def test_degenerate_reference_boxes_match_torchvision():
    proposals = torch.tensor([[0.0, 0.0, 0.0, 5.0], [1.0, 1.0, 4.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    gt = torch.tensor([[0.0, 0.0, 3.0, 5.0], [1.0, 1.0, 1.0, 4.0], [1.0, 1.0, 3.0, 3.0]])
    ours = BoxCoder().encode_single(gt, proposals)
    assert_close(ours, TVBoxCoder((10.0, 10.0, 5.0, 5.0)).encode_single(gt, proposals))
    assert not torch.isfinite(ours).all()
    deltas = torch.randn(3, 4)
    assert_close(
        BoxCoder().decode_single(deltas, proposals),
        TVBoxCoder((10.0, 10.0, 5.0, 5.0)).decode_single(deltas, proposals),
    )


def test_default_weights_and_clip():
    coder = BoxCoder()
    assert coder.weights == (10.0, 10.0, 5.0, 5.0)
    assert coder.bbox_xform_clip == pytest.approx(math.log(1000 / 16))
    with pytest.raises(ValueError, match="4 weights"):
        BoxCoder((1.0, 1.0))


@settings(max_examples=50, deadline=None)
@given(
    boxes_strategy(min_n=1, min_wh=1.0),
    st.integers(0, 2**31 - 1),
    st.sampled_from(WEIGHTS),
)
def test_encode_decode_round_trip(proposals, seed, weights):
    gt = _jitter(proposals, seed)
    coder = BoxCoder(weights)
    deltas = coder.encode_single(gt, proposals)
    assert torch.allclose(coder.decode_single(deltas, proposals), gt, atol=1e-3, rtol=1e-5)
    decoded = coder.decode(deltas, [proposals])[:, 0]
    assert torch.allclose(decoded, gt, atol=1e-3, rtol=1e-5)


@settings(max_examples=50, deadline=None)
@given(boxes_strategy(min_n=1, min_wh=1.0), st.integers(0, 2**31 - 1))
def test_decode_encode_round_trip(proposals, seed):
    g = torch.Generator().manual_seed(seed)
    deltas = torch.randn(len(proposals), 4, generator=g)
    coder = BoxCoder()
    decoded = coder.decode_single(deltas, proposals)
    assert torch.allclose(coder.encode_single(decoded, proposals), deltas, atol=1e-3)
