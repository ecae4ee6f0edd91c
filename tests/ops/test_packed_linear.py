"""oneDNN's packed linear: F.linear to float rounding, used only eagerly, on the CPU, without gradients."""

import pytest
import torch
import torch.nn.functional as F

from visionkit.ops.packed_linear import (
    onednn_linear_available,
    pack_linear_weight,
    packed_linear,
    packed_linear_applies,
)

pytestmark = pytest.mark.skipif(not onednn_linear_available(), reason="this PyTorch build has no oneDNN")


@pytest.mark.parametrize("rows", [1, 68, 300])
def test_packed_linear_equals_f_linear(rows):
    g = torch.Generator().manual_seed(rows)
    x, w, b = torch.randn(rows, 700, generator=g), torch.randn(90, 700, generator=g) / 26, torch.randn(90)
    with torch.inference_mode():
        assert packed_linear_applies(x, w)
        got = packed_linear(x, pack_linear_weight(w), b)
        no_bias = packed_linear(x[:, ::2], pack_linear_weight(w[:, ::2]), None)  # strided input
    expected = F.linear(x.double(), w.double(), b.double())
    assert got.shape == (rows, 90) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-5 * float(expected.abs().max()))
    torch.testing.assert_close(no_bias, F.linear(x[:, ::2], w[:, ::2]), rtol=1e-5, atol=1e-5)


def test_gradients_other_dtypes_shapes_and_autocast_take_f_linear():
    x, w, b = torch.randn(4, 8), torch.randn(3, 8), torch.randn(3)
    assert packed_linear_applies(x, w, b)
    assert not packed_linear_applies(x.requires_grad_(), w)
    assert not packed_linear_applies(x.detach(), w, b.requires_grad_())
    with torch.no_grad():
        assert packed_linear_applies(x, w.requires_grad_(), b)
    x, w = x.detach(), w.detach()
    assert not packed_linear_applies(x.double(), w.double())
    assert not packed_linear_applies(torch.randn(2, 4, 8), w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not packed_linear_applies(x, w)


def test_zero_rows():
    w = torch.randn(3, 8)
    with torch.inference_mode():
        out = packed_linear(torch.randn(0, 8), pack_linear_weight(w), None)
    assert out.shape == (0, 3)
