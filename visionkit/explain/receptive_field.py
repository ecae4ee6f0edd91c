"""Receptive-field arithmetic per spatial axis, and its propagation through every torch op.

Each spatial axis of a feature map carries (size r, jump j, start): a unit sees r input pixels,
neighbouring units are j input pixels apart, and the first unit's field is centred at `start`
(input pixel i spans [i, i + 1), so the input itself is r = 1, j = 1, start = 0.5). A window op
of kernel k, stride s, padding p and dilation d (effective kernel k' = d·(k − 1) + 1) maps

    r_out = r_in + (k' − 1)·j_in,   j_out = j_in·s,   start_out = start_in + ((k' − 1)/2 − p)·j_in.

Rules by op (`FieldTracker` applies them to every op of a forward pass):
- convolution, max/avg pooling: the recurrence above. Transposed convolution: its inverse
  (j_out = j_in/s, r_out = r_in + (k' − 1)·j_in/s); adaptive pooling: its largest window with
  j_out = j_in·n_in/n_out; interpolation (nearest: 1 tap, linear: 2, cubic: 4): likewise with
  stride n_in/n_out. For these three, units are not evenly spaced and the values are the
  best linear fit. Padding shifts `start`.
- ops whose output keeps an input's spatial size (activations, norms, residual adds, channel
  concatenation as in Inception): per axis, the max r and j over those inputs, and the start
  of the input with the largest r — the max-over-inputs rule for branches. Inputs broadcast
  from another size (a squeeze-excitation gate of 1×1) are left out of the max.
- flatten / view / reshape / mean / sum / amax that drop the spatial axes: the field becomes
  global, r = r_in + (n − 1)·j_in over the whole map, with no jump ("global" below).
- anything else that changes the spatial size (RoI pooling, slicing): unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from visionkit.explain.macs import CONVS, TRANSPOSED_CONVS


@dataclass(frozen=True)
class AxisField:
    """Receptive field along one spatial axis, in input pixels; `jump` is None once global."""

    size: float
    jump: float | None
    start: float

    def window(self, kernel: int, stride: float, padding: float, dilation: int = 1) -> AxisField:
        """The field after a sliding window (convolution or pooling)."""
        span = dilation * (kernel - 1)
        return AxisField(self.size + span * self.jump, self.jump * stride,
                         self.start + (span / 2 - padding) * self.jump)

    def transposed(self, kernel: int, stride: int, padding: int, dilation: int = 1) -> AxisField:
        """The field after a transposed convolution (stride divides the jump)."""
        span = dilation * (kernel - 1)
        return AxisField(self.size + span * self.jump / stride, self.jump / stride,
                         self.start + (padding - span / 2) * self.jump / stride)

    def resampled(self, n_in: int, n_out: int, taps: int) -> AxisField:
        """The field after resizing n_in → n_out units, each output reading `taps` inputs."""
        step = n_in / n_out
        return AxisField(self.size + (taps - 1) * self.jump, self.jump * step,
                         self.start + (step - 1) / 2 * self.jump)

    def whole(self, n: int) -> AxisField:
        """The global field of a unit that sees all n positions of this axis."""
        return AxisField(self.size + (n - 1) * self.jump, None, self.start + (n - 1) / 2 * self.jump)


Field = tuple[AxisField, ...]  # one AxisField per spatial axis (H, W for images)


def image_field(spatial_dims: int = 2) -> Field:
    """The field of an input image: every pixel sees itself."""
    return (AxisField(1.0, 1.0, 0.5),) * spatial_dims


def is_global(field: Field) -> bool:
    """True when the field no longer has a spatial layout (after flatten or global pooling)."""
    return field[0].jump is None


def merge(fields: Sequence[Field]) -> Field:
    """Max-over-inputs rule: per axis the largest size and jump, the start of the largest size."""
    out = []
    for axes in zip(*fields):
        widest = max(axes, key=lambda a: a.size)
        jumps = [a.jump for a in axes if a.jump is not None]
        out.append(replace(widest, jump=max(jumps) if jumps else None))
    return tuple(out)


def adaptive_window(n_in: int, n_out: int) -> int:
    """Largest window of adaptive pooling from n_in to n_out cells."""
    return max(math.ceil((i + 1) * n_in / n_out) - (i * n_in) // n_out for i in range(n_out))


def _per_axis(value: Any, n: int) -> list:
    if isinstance(value, int | float):
        return [value] * n
    value = list(value)
    return value * n if len(value) == 1 else value


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _conv(field: Field, args: tuple, kwargs: dict, transposed: bool) -> Field:
    weight = _arg(args, kwargs, 1, "weight", None)
    kernels = list(weight.shape[2:])
    n = len(kernels)
    stride = _per_axis(_arg(args, kwargs, 3, "stride", 1), n)
    dilation = _per_axis(_arg(args, kwargs, 6 if transposed else 5, "dilation", 1), n)
    padding = _arg(args, kwargs, 4, "padding", 0)
    if padding == "valid":
        padding = 0
    if padding == "same":
        padding = [d * (k - 1) // 2 for k, d in zip(kernels, dilation)]
    padding = _per_axis(padding, n)
    if transposed:
        return tuple(a.transposed(k, s, p, d)
                     for a, k, s, p, d in zip(field, kernels, stride, padding, dilation))
    return tuple(a.window(k, s, p, d) for a, k, s, p, d in zip(field, kernels, stride, padding, dilation))


def _pool(field: Field, args: tuple, kwargs: dict, has_dilation: bool) -> Field:
    n = len(field)
    kernels = _per_axis(_arg(args, kwargs, 1, "kernel_size", 1), n)
    stride = _arg(args, kwargs, 2, "stride", None)
    stride = kernels if stride is None or stride == [] or stride == () else _per_axis(stride, n)
    padding = _per_axis(_arg(args, kwargs, 3, "padding", 0), n)
    dilation = _per_axis(_arg(args, kwargs, 4, "dilation", 1), n) if has_dilation else [1] * n
    return tuple(a.window(k, s, p, d) for a, k, s, p, d in zip(field, kernels, stride, padding, dilation))


def _pad(field: Field, args: tuple, kwargs: dict) -> Field:
    pads = list(_arg(args, kwargs, 1, "pad", ()))  # (last-axis before, after, previous axis ...)
    out = list(field)
    for i in range(min(len(pads) // 2, len(field))):
        axis = len(field) - 1 - i
        out[axis] = replace(field[axis], start=field[axis].start - pads[2 * i] * field[axis].jump)
    return tuple(out)


MAX_POOLS = {F.max_pool1d, F.max_pool2d, F.max_pool3d, F.max_pool1d_with_indices,
             F.max_pool2d_with_indices, F.max_pool3d_with_indices, torch.max_pool1d, torch.max_pool2d,
             torch.max_pool3d}
AVG_POOLS = {F.avg_pool1d, F.avg_pool2d, F.avg_pool3d}
ADAPTIVE_POOLS = {F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
                  F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
                  F.adaptive_max_pool1d_with_indices, F.adaptive_max_pool2d_with_indices,
                  F.adaptive_max_pool3d_with_indices}
PADS = {F.pad, torch._C._nn.pad}
FLATTENING = {torch.flatten, torch.Tensor.flatten, torch.Tensor.view, torch.Tensor.reshape,
              torch.reshape, torch.mean, torch.Tensor.mean, torch.sum, torch.Tensor.sum,
              torch.amax, torch.Tensor.amax}
INTERPOLATION_TAPS = {"nearest": 1, "nearest-exact": 1, "area": 1, "linear": 2, "bilinear": 2,
                      "trilinear": 2, "bicubic": 4}


def _spatial(t: torch.Tensor, field: Field) -> tuple[int, ...]:
    return tuple(t.shape[t.dim() - len(field):]) if t.dim() >= len(field) else ()


def output_field(func: Any, args: tuple, kwargs: dict, inputs: list[tuple[torch.Tensor, Field]],
                 out: torch.Tensor) -> Field | None:
    """The field of `out`, produced by `func` from `inputs` (tensors with known fields)."""
    first, field = inputs[0]
    if not is_global(field):
        if func in CONVS or func in TRANSPOSED_CONVS:
            return _conv(field, args, kwargs, transposed=func in TRANSPOSED_CONVS)
        if func in MAX_POOLS or func in AVG_POOLS:
            return _pool(field, args, kwargs, has_dilation=func in MAX_POOLS)
        if func in ADAPTIVE_POOLS or func is F.interpolate:
            sizes = zip(field, _spatial(first, field), _spatial(out, field))
            if func in ADAPTIVE_POOLS:
                return tuple(a.resampled(n, m, adaptive_window(n, m)) for a, n, m in sizes)
            taps = INTERPOLATION_TAPS.get(_arg(args, kwargs, 3, "mode", "nearest"), 1)
            return tuple(a if n == m else a.resampled(n, m, taps) for a, n, m in sizes)
        if func in PADS:
            return _pad(field, args, kwargs)
    matching = [f for t, f in inputs if is_global(f) or _spatial(t, f) == _spatial(out, f)]
    if len(matching) == len(inputs):
        return merge(matching)
    if func in FLATTENING and not any(is_global(f) for _, f in inputs):
        return merge([tuple(a.whole(n) for a, n in zip(f, _spatial(t, f))) for t, f in inputs])
    spatial = [f for f in matching if not is_global(f)]  # broadcast inputs are left out
    return merge(spatial) if spatial else None


def tensors_in(obj: Any, depth: int = 4) -> Iterator[torch.Tensor]:
    """Tensors inside nested tuples, lists, dicts and plain objects (e.g. an ImageList)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif depth == 0 or obj is None or isinstance(obj, str | int | float | bool | torch.nn.Module):
        return
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from tensors_in(item, depth - 1)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from tensors_in(item, depth - 1)
    elif hasattr(obj, "__dict__") and not callable(obj):
        for item in vars(obj).values():
            yield from tensors_in(item, depth - 1)


class FieldTracker(TorchFunctionMode):
    """While active, records the receptive field of every tensor computed from tracked inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def track(self, tensor: torch.Tensor, spatial_dims: int = 2) -> None:
        """Mark `tensor` as an input image whose last `spatial_dims` axes are spatial."""
        self.fields[tensor] = image_field(spatial_dims)

    def field(self, tensor: torch.Tensor) -> Field | None:
        """The recorded field of `tensor`, or None when it does not derive from a tracked input."""
        return self.fields.get(tensor)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: D105
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [(t, self.fields[t]) for t in tensors_in((args, kwargs)) if t in self.fields]
        if not inputs:
            return out
        for tensor in tensors_in(out, depth=2):
            field = output_field(func, args, kwargs, inputs, tensor)
            if field is None:
                continue
            self.fields[tensor] = field
            base = tensor._base
            if base is not None and args and tensor is args[0] and base not in self.fields:
                self.fields[base] = field  # in-place write into a view, e.g. images pasted into a batch
        return out
