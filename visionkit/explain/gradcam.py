"""Grad-CAM and Grad-CAM++ for any model whose output a callable turns into a scalar score.

Forward hooks capture layer outputs for one pass; `torch.autograd.grad` gives d(score)/d(output)
(no parameter `.grad` is touched; frozen parameters require grad during the pass so that a graph
exists). Hooks are removed, and every module's train/eval flag and every parameter's
`requires_grad` restored, on exit. The default layer is the last module to finish that contains
a convolution, outputs a map larger than 1×1 and that the score depends on: a classifier's last
conv block, the FPN level a detector's box came from. Heatmaps are placed on the input's pixel
grid by each cell's receptive-field centre (start + i·jump, see `receptive_field`), which also
undoes a detector's internal resize and padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from visionkit.errors import ConfigError
from visionkit.explain.receptive_field import Field, FieldTracker, is_global, tensors_in
from visionkit.explain.state import evaluating, parameters_requiring_grad

METHODS = ("gradcam", "gradcam++")
Score = Callable[[Any], torch.Tensor]


def class_score(classes: int | Sequence[int] | None = None) -> Score:
    """Score of a classifier's logits `[B, C]`: the summed logit of `classes` (None: top-1)."""

    def score(logits: torch.Tensor) -> torch.Tensor:
        if classes is None:
            index = logits.detach().argmax(1)
        else:
            index = torch.as_tensor(classes, device=logits.device).expand(logits.shape[0])
        return logits.gather(1, index[:, None]).sum()

    return score


def box_score(detection: int, image: int = 0) -> Score:
    """Score of a detector's output (list of `{"boxes", "labels", "scores"}`): one detection's."""
    return lambda detections: detections[image]["scores"][detection]


@dataclass
class CamResult:
    """Heatmaps `[B, H, W]` on the input grid and `cells` `[B, h, w]` on the layer's, both 0..1."""

    heatmaps: torch.Tensor
    cells: torch.Tensor
    layer: str
    output: Any


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules())


def _is_map(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[-1] * t.shape[-2] > 1


def cam_weights(activations: torch.Tensor, grads: torch.Tensor, method: str) -> torch.Tensor:
    """Channel weights `[B, C, 1, 1]`: mean gradient (Grad-CAM) or Grad-CAM++'s weighted positive one."""
    if method == "gradcam":
        return grads.mean((2, 3), keepdim=True)
    g2, g3 = grads.pow(2), grads.pow(3)
    denominator = 2 * g2 + activations.sum((2, 3), keepdim=True) * g3
    alpha = torch.where(denominator != 0, g2 / denominator.where(denominator != 0, 1.0), 0.0)
    return (alpha * grads.clamp(min=0)).sum((2, 3), keepdim=True)


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of `[B, ...]` to max 1 (all-zero maps stay zero)."""
    peak = maps.flatten(1).amax(1).clamp(min=1e-12).view(-1, *[1] * (maps.dim() - 1))
    return maps / peak


def place_on_input(cells: torch.Tensor, field: Field | None, size: tuple[int, int]) -> torch.Tensor:
    """Resample `[B, h, w]` cells to the input grid `size`, cell i centred at start + i·jump."""
    b, h, w = cells.shape
    if field is None or is_global(field):
        return F.interpolate(cells[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    axes = []
    for axis, n, cells_n in zip(field, size, (h, w)):
        u = (torch.arange(n, dtype=cells.dtype) + 0.5 - axis.start) / axis.jump
        axes.append(2 * u / (cells_n - 1) - 1 if cells_n > 1 else torch.zeros(n, dtype=cells.dtype))
    ys, xs = torch.meshgrid(axes[0], axes[1], indexing="ij")
    grid = torch.stack([xs, ys], -1).expand(b, *size, 2).to(cells.device)
    return F.grid_sample(cells[:, None], grid, mode="bilinear", padding_mode="border",
                         align_corners=True)[:, 0]


def grad_cam(model: nn.Module, inputs: Any, score: Score, *, layer: str | None = None,
             method: str = "gradcam") -> CamResult:
    """Grad-CAM(++) of `score(model(inputs))` at `layer` (dotted module name; default: see module doc).

    inputs: a batch `[B, C, H, W]` (classifiers; scores of different images stay separate) or a
    list with one `[C, H, W]` image (detectors).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if layer is not None:
        try:
            modules = {layer: model.get_submodule(layer)}
        except AttributeError as err:
            raise ConfigError(f"model has no layer {layer!r} ({err})") from err
    else:
        modules = {name: m for name, m in model.named_modules() if _has_conv(m)}
    captured: list[tuple[str, torch.Tensor]] = []
    tracker = FieldTracker()
    with ExitStack() as stack:
        for name, module in modules.items():
            def keep(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
                if _is_map(out) and out.requires_grad:
                    captured.append((name, out))
            stack.callback(module.register_forward_hook(keep).remove)
        with evaluating(model), parameters_requiring_grad(model), torch.enable_grad(), tracker:
            for tensor in tensors_in(inputs):
                tracker.track(tensor)
            output = model(inputs)
            value = score(output)
    if not captured:
        raise ConfigError(f"layer {layer or '(any conv block)'} produced no feature map "
                          f"[B, C, H, W] larger than 1x1 that depends on parameters")
    grads = torch.autograd.grad(value, [t for _, t in captured], allow_unused=True)
    used = [i for i, g in enumerate(grads) if g is not None and bool(g.abs().sum() > 0)]
    if not used:
        raise ConfigError(f"the score does not depend on layer {layer or '(any conv block)'}")
    name, activations = captured[used[-1]]
    activations = activations.detach()
    weights = cam_weights(activations, grads[used[-1]], method)
    cells = normalise((weights * activations).sum(1).clamp(min=0))
    size = tuple(next(tensors_in(inputs)).shape[-2:])
    heatmaps = normalise(place_on_input(cells, tracker.field(captured[used[-1]][1]), size).clamp(min=0))
    return CamResult(heatmaps, cells, name, _detached(output))


def _detached(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, dict):
        return {k: _detached(v) for k, v in output.items()}
    if isinstance(output, list | tuple):
        return type(output)(_detached(v) for v in output)
    return output
