"""NNPACK's Winograd 3x3 path: the direct convolution to Winograd's rounding, only where it pays."""

import pytest
import torch
import torch.nn.functional as F

from visionkit.ops import winograd_conv
from visionkit.ops.winograd_conv import MIN_PIXELS, conv2d, nnpack_available, winograd_applies

pytestmark = pytest.mark.skipif(not nnpack_available(), reason="this PyTorch build has no NNPACK")


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.double() - expected).abs().max() / expected.abs().max())


@pytest.mark.parametrize("batch,padding,bias,channels_last", [
    (1, 1, True, False), (1, 0, False, True), (2, 2, True, True), (3, 1, False, False)])
def test_winograd_equals_direct_convolution(batch, padding, bias, channels_last):
    g = torch.Generator().manual_seed(batch + padding)
    x = torch.randn(batch, 24, 48, 56, generator=g)
    w = torch.randn(40, 24, 3, 3, generator=g) / 15
    b = torch.randn(40, generator=g) if bias else None
    if channels_last:
        cl = torch.channels_last
        x, w = x.contiguous(memory_format=cl), w.contiguous(memory_format=cl)
    assert winograd_applies(x, w, (1, 1), (1, 1), 1)
    expected = F.conv2d(x.double(), w.double(), None if b is None else b.double(), padding=padding)
    got = conv2d(x, w, b, padding=(padding, padding))
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert relative_error(got, expected) < 5e-5  # direct float32 is ~2e-6; Winograd's ~1e-5
    assert relative_error(got, expected) > 0  # really another kernel than the float64 reference


def test_small_maps_strides_dilations_groups_other_kernels_and_float64_go_direct():
    big, small = torch.randn(1, 8, 64, 64), torch.randn(1, 8, 40, 40)
    assert small.shape[-1] * small.shape[-2] < MIN_PIXELS <= big.shape[-1] * big.shape[-2]
    w = torch.randn(8, 8, 3, 3)
    assert winograd_applies(big, w, (1, 1), (1, 1), 1)
    assert not winograd_applies(small, w, (1, 1), (1, 1), 1)
    assert not winograd_applies(big, w, (2, 2), (1, 1), 1)
    assert not winograd_applies(big, w, (1, 1), (2, 2), 1)
    assert not winograd_applies(big, torch.randn(8, 4, 3, 3), (1, 1), (1, 1), 2)
    assert not winograd_applies(big, torch.randn(8, 8, 5, 5), (1, 1), (1, 1), 1)
    assert not winograd_applies(big.double(), w.double(), (1, 1), (1, 1), 1)
    for x, weight, stride in ((small, w, (1, 1)), (big, w, (2, 2)), (big.double(), w.double(), (1, 1))):
        torch.testing.assert_close(conv2d(x, weight, None, stride, (1, 1)),
                                   F.conv2d(x, weight, None, stride, 1), rtol=0, atol=0)


def test_tracing_records_the_direct_convolution(monkeypatch):
    calls = []
    monkeypatch.setattr(winograd_conv, "winograd_conv2d", lambda *a: calls.append(a))
    x, w = torch.randn(1, 4, 64, 64), torch.randn(4, 4, 3, 3)
    traced = torch.jit.trace(lambda t: conv2d(t, w, None, (1, 1), (1, 1)), (x,), check_trace=False)
    assert not calls and "nnpack" not in str(traced.graph)
    torch.testing.assert_close(traced(x), F.conv2d(x, w, padding=1))


def test_gradients_match_the_direct_convolution():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 6, 50, 50, generator=g, requires_grad=True)
    w = torch.randn(5, 6, 3, 3, generator=g, requires_grad=True)
    grads = []
    for fn in (lambda: conv2d(x, w, None, padding=(1, 1)), lambda: F.conv2d(x, w, padding=1)):
        (fn() ** 2).sum().backward()
        grads.append((x.grad.clone(), w.grad.clone()))
        x.grad = w.grad = None
    for ours, direct in zip(*grads, strict=True):
        torch.testing.assert_close(ours, direct, rtol=1e-4, atol=1e-4 * float(direct.abs().max()))
