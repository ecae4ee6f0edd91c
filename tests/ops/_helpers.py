"""Random inputs shared by the ops tests (seeded, on a chosen device)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from hypothesis import strategies as st

# Absolute tolerance of every float comparison against torchvision.
ATOL = 1e-5


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = ATOL) -> None:
    """Same shape, dtype and device, values within ``atol`` (NaNs in the same places)."""
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0, equal_nan=True)


def assert_same_losses(ours: Sequence[torch.Tensor], theirs: Sequence[torch.Tensor],
                       inputs: Sequence[torch.Tensor]) -> None:
    """Equal losses, and equal gradients of their sum with respect to each of ``inputs``."""
    for o, t in zip(ours, theirs, strict=True):
        assert_close(o, t)
    grads_ours = torch.autograd.grad(sum(ours), tuple(inputs))
    grads_theirs = torch.autograd.grad(sum(theirs), tuple(inputs))
    for o, t in zip(grads_ours, grads_theirs, strict=True):
        assert_close(o, t)


def random_boxes(
    n: int,
    seed: int,
    device: torch.device | str = "cpu",
    size: float = 200.0,
    degenerate: float = 0.0,
) -> torch.Tensor:
    """``n`` valid ``xyxy`` boxes inside ``size x size``; a ``degenerate`` share has zero width
    or height (or both)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size * 0.8
    wh = torch.rand(n, 2, generator=g) * size * 0.4 + 1.0
    if degenerate > 0 and n > 0:
        flat = torch.rand(n, 2, generator=g) < degenerate
        wh[flat] = 0.0
    return torch.cat((xy, xy + wh), dim=1).to(device)


@st.composite
def boxes_strategy(draw: st.DrawFn, min_n: int = 0, max_n: int = 12, min_wh: float = 0.0):
    """Hypothesis: a ``[n, 4]`` float32 tensor of valid ``xyxy`` boxes on a 0..100 canvas."""
    n = draw(st.integers(min_n, max_n))
    coord = st.floats(0, 100, allow_nan=False, width=32)
    side = st.floats(min_wh, 50, allow_nan=False, width=32)
    rows = []
    for _ in range(n):
        x, y, w, h = draw(coord), draw(coord), draw(side), draw(side)
        rows.append([x, y, x + w, y + h])
    return torch.tensor(rows, dtype=torch.float32).reshape(n, 4)
