"""visionkit.ops.BalancedPositiveNegativeSampler against torchvision's, plus its invariants."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection._utils import (
    BalancedPositiveNegativeSampler as TVSampler,
)

from visionkit.ops import BalancedPositiveNegativeSampler


def _labels(counts: list[int], seed: int, device) -> list[torch.Tensor]:
    """Per image labels in {-1, 0, 1, 2, 3}: ignored, background, classes."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(-1, 4, (n,), generator=g).to(device) for n in counts]


@pytest.mark.parametrize("batch,fraction", [(256, 0.5), (512, 0.25), (16, 0.5), (0, 0.5)])
@pytest.mark.parametrize("counts", [[0], [40], [1000, 3, 0], [5000]])
def test_matches_torchvision_under_same_seed(device, batch, fraction, counts):
    labels = _labels(counts, seed=sum(counts), device=device)
    torch.manual_seed(123)
    ours = BalancedPositiveNegativeSampler(batch, fraction)(labels)
    torch.manual_seed(123)
    theirs = TVSampler(batch, fraction)(labels)
    for mine, tv in zip(ours[0] + ours[1], theirs[0] + theirs[1], strict=True):
        assert mine.dtype == torch.uint8 and mine.device == labels[0].device
        assert torch.equal(mine, tv)


def test_generator_makes_draws_reproducible(device):
    labels = _labels([3000, 500], seed=0, device=device)
    sampler = BalancedPositiveNegativeSampler(256, 0.5, generator=torch.Generator().manual_seed(7))
    first = sampler(labels)
    again = BalancedPositiveNegativeSampler(256, 0.5, generator=torch.Generator().manual_seed(7))
    second = again(labels)
    other = BalancedPositiveNegativeSampler(256, 0.5, generator=torch.Generator().manual_seed(8))
    third = other(labels)
    assert all(torch.equal(a, b) for a, b in zip(first[0], second[0], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first[0], third[0], strict=True))


def test_bad_fraction():
    with pytest.raises(ValueError, match="positive_fraction"):
        BalancedPositiveNegativeSampler(256, 1.5)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(-1, 3), max_size=300),
    st.integers(0, 300),
    st.floats(0.0, 1.0),
    st.integers(0, 2**31 - 1),
)
def test_sampled_counts_and_membership(values, batch, fraction, seed):
    labels = torch.tensor(values, dtype=torch.int64)
    sampler = BalancedPositiveNegativeSampler(
        batch, fraction, generator=torch.Generator().manual_seed(seed)
    )
    (pos,), (neg,) = sampler([labels])
    pos, neg = pos.bool(), neg.bool()
    num_pos, num_neg = int((labels >= 1).sum()), int((labels == 0).sum())
    expect_pos = min(num_pos, int(batch * fraction))
    assert int(pos.sum()) == expect_pos
    assert int(neg.sum()) == min(num_neg, batch - expect_pos)
    assert (labels[pos] >= 1).all() and (labels[neg] == 0).all()
