"""Receptive-field arithmetic: the recurrence against gradients, and the rules for branches."""

from __future__ import annotations

import torch
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st
from torch import nn

from visionkit.explain.receptive_field import AxisField, FieldTracker, adaptive_window, image_field


def field_of(model: nn.Module, x: torch.Tensor, spatial_dims: int = 2):
    tracker = FieldTracker()
    with tracker:
        tracker.track(x, spatial_dims)
        out = model(x)
    return tracker.field(out), out


@st.composite
def window_stacks(draw):
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        k, s = draw(st.integers(1, 5)), draw(st.integers(1, 3))
        if draw(st.booleans()):
            d = draw(st.integers(1, 3))
            p = draw(st.integers(0, (d * (k - 1)) // 2))
            conv = nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
            nn.init.constant_(conv.weight, 1.0)
            layers.append(conv)
        else:
            layers.append(nn.AvgPool1d(k, s, draw(st.integers(0, k // 2))))
    return nn.Sequential(*layers)


@settings(max_examples=40, deadline=None)
@given(window_stacks())
def test_recurrence_matches_the_pixels_a_unit_depends_on(model):
    """With positive weights, d(unit)/d(input) is non-zero exactly on the unit's receptive field."""
    x = torch.ones(1, 1, 160, requires_grad=True)
    try:
        (axis,), out = field_of(model, x, spatial_dims=1)
    except RuntimeError as err:  # the drawn stack shrinks 160 px below a later kernel: no model
        assert "Kernel size can't be greater than actual input size" in str(err)
        reject()
    units = out.shape[-1]
    assume(units >= 2)
    extents = []
    for u in (units // 2 - 1, units // 2):
        assume(axis.start + u * axis.jump - axis.size / 2 >= 0)
        assume(axis.start + u * axis.jump + axis.size / 2 <= x.shape[-1])
        (grad,) = torch.autograd.grad(out[0, 0, u], x, retain_graph=True)
        nonzero = torch.nonzero(grad[0, 0]).flatten()
        lo, hi = int(nonzero.min()), int(nonzero.max())
        assert hi - lo + 1 == axis.size
        assert (lo + hi + 1) / 2 == axis.start + u * axis.jump
        extents.append(lo)
    assert extents[1] - extents[0] == axis.jump


def test_branches_take_the_max_over_inputs():
    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.small, self.large = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 5, padding=2)

        def forward(self, x):
            return torch.cat([self.small(x), self.large(x)], 1)

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            out = self.conv(x)
            out += x
            return out

    x = torch.zeros(1, 3, 16, 16)
    assert field_of(TwoBranches(), x)[0] == (AxisField(5, 1, 0.5),) * 2
    assert field_of(Residual(), x)[0] == (AxisField(3, 1, 0.5),) * 2


def test_flatten_and_global_pooling_make_the_field_global():
    x, conv = torch.zeros(1, 3, 16, 16), nn.Conv2d(3, 2, 3, stride=2, padding=1)  # 8 x 8 units
    flat, _ = field_of(nn.Sequential(conv, nn.Flatten(), nn.Linear(128, 2)), x)
    assert flat == (AxisField(3 + 7 * 2, None, 0.5 + 3.5 * 2),) * 2
    pooled, _ = field_of(nn.Sequential(conv, nn.AdaptiveAvgPool2d(1)), x)
    assert [a.size for a in pooled] == [17, 17] and [a.jump for a in pooled] == [16, 16]


def test_padding_interpolation_and_unknown_ops():
    x = torch.zeros(1, 1, 8, 8)
    assert field_of(nn.ZeroPad2d((2, 0, 1, 0)), x)[0] == (AxisField(1, 1, -0.5), AxisField(1, 1, -1.5))
    up, _ = field_of(nn.Upsample(scale_factor=2, mode="nearest"), x)
    assert up == (AxisField(1, 0.5, 0.25),) * 2
    same, _ = field_of(nn.Conv2d(1, 1, 5, padding="same", dilation=2), x)
    assert same == (AxisField(9, 1, 0.5),) * 2

    class Slice(nn.Module):
        def forward(self, t):
            return t[..., 2:5, 2:5]

    assert field_of(Slice(), x)[0] is None


def test_window_helpers():
    assert image_field(1) == (AxisField(1.0, 1.0, 0.5),)
    assert adaptive_window(7, 1) == 7 and adaptive_window(5, 3) == 3 and adaptive_window(6, 6) == 1
    assert AxisField(3, 2, 1.5).transposed(4, 2, 1) == AxisField(6, 1, 1.0)
