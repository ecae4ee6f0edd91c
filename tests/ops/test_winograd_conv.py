"""NNPACK's Winograd 3x3 path: the direct convolution to Winograd's rounding, only where it pays."""

import pytest
import torch
import torch.nn.functional as F

from visionkit.ops import winograd_conv
from visionkit.ops.winograd_conv import MIN_PIXELS, conv2d, nnpack_available, winograd_applies

pytestmark = pytest.mark.skipif(not nnpack_available(), reason="this PyTorch build has no NNPACK")


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.double() - expected).abs().max() / expected.abs().max())


@pytest.fixture
def nnpack_calls(monkeypatch) -> list:
    calls = []
    original = torch._nnpack_spatial_convolution

    def spy(*args):
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", spy)
    return calls


@pytest.mark.parametrize("batch,padding,bias,channels_last", [
    (1, (1, 1), True, False), (1, (0, 0), False, True), (2, (2, 2), True, True), (3, (1, 0), False, False)])
def test_winograd_equals_direct_convolution(batch, padding, bias, channels_last, nnpack_calls):
    g = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 24, 48, 56, generator=g)
    w = torch.randn(40, 24, 3, 3, generator=g) / 15
    b = torch.randn(40, generator=g) if bias else None
    if channels_last:
        cl = torch.channels_last
        x, w = x.contiguous(memory_format=cl), w.contiguous(memory_format=cl)
    assert winograd_applies(x, w, padding=padding)
    expected = F.conv2d(x.double(), w.double(), None if b is None else b.double(), padding=padding)
    got = conv2d(x, w, b, padding=padding)
    assert nnpack_calls == [(1, 24, 48, 56)] * batch  # one image per call
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert relative_error(got, expected) < 5e-5  # direct float32 is ~2e-6; Winograd's ~1e-5


def test_everything_else_goes_direct(nnpack_calls):
    big, small = torch.randn(1, 8, 64, 64), torch.randn(1, 8, 40, 40)
    assert small.shape[-1] * small.shape[-2] < MIN_PIXELS <= big.shape[-1] * big.shape[-2]
    w = torch.randn(8, 8, 3, 3)
    assert winograd_applies(big, w, padding=1)
    assert not winograd_applies(small, w, padding=1)
    assert not winograd_applies(big, w, stride=2, padding=1)
    assert not winograd_applies(big, w, padding=2, dilation=2)
    assert not winograd_applies(big, w, padding=3)  # NNPACK takes padding below the kernel size
    assert not winograd_applies(big, torch.randn(8, 4, 3, 3), padding=1, groups=2)
    assert not winograd_applies(big, torch.randn(8, 8, 5, 5), padding=1)
    assert not winograd_applies(big.double(), w.double(), padding=1)
    assert not winograd_applies(big[:0], w, padding=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not winograd_applies(big, w, padding=1)
    with torch.backends.nnpack.flags(enabled=False):
        assert not winograd_applies(big, w, padding=1)
    for x, weight, stride, padding in ((small, w, 1, 1), (big, w, 2, 1), (big, w, 1, 3),
                                       (big.double(), w.double(), 1, 1), (big[:0], w, 1, 1)):
        torch.testing.assert_close(conv2d(x, weight, None, stride, padding),
                                   F.conv2d(x, weight, None, stride, padding), rtol=0, atol=0)
    assert not nnpack_calls


def test_jit_and_fx_tracing_record_the_direct_convolution(monkeypatch):
    calls = []
    monkeypatch.setattr(winograd_conv, "winograd_conv2d", lambda *a: calls.append(a))
    x, w = torch.randn(1, 4, 64, 64), torch.randn(4, 4, 3, 3)
    traced = torch.jit.trace(lambda t: conv2d(t, w, None, 1, 1), (x,), check_trace=False)
    assert "nnpack" not in str(traced.graph)
    torch.testing.assert_close(traced(x), F.conv2d(x, w, padding=1))

    class Net(torch.nn.Module):
        def forward(self, t):
            return conv2d(t, w, None, 1, 1)

    graph = torch.fx.symbolic_trace(Net())
    torch.testing.assert_close(graph(x), F.conv2d(x, w, padding=1))
    assert not calls


def test_gradients_match_the_direct_convolution():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 6, 50, 50, generator=g, requires_grad=True)
    w = torch.randn(5, 6, 3, 3, generator=g, requires_grad=True)
    grads = []
    for fn in (lambda: conv2d(x, w, None, padding=1), lambda: F.conv2d(x, w, padding=1)):
        (fn() ** 2).sum().backward()
        grads.append((x.grad.clone(), w.grad.clone()))
        x.grad = w.grad = None
    for ours, direct in zip(*grads, strict=True):
        torch.testing.assert_close(ours, direct, rtol=1e-4, atol=1e-4 * float(direct.abs().max()))
