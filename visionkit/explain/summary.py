"""Per-layer summary of one forward pass: output shape, parameters, MACs, memory, receptive field.

Works on any `nn.Module`. Module hooks mark which module is running; a torch-function mode
sees every op inside it, counts MACs (`macs.op_macs`) and parameters (the first op that uses a
parameter counts it, for the innermost running module) and propagates receptive fields
(`receptive_field.FieldTracker`). A row is one call of a leaf module, or of any module whose own
code (not a child's) used parameters or did MACs; a module called twice gives two rows.
Activation memory is the fp32 size of each row's outputs, in-place outputs included.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from visionkit.explain.macs import op_macs
from visionkit.explain.receptive_field import Field, FieldTracker, tensors_in
from visionkit.explain.state import evaluating

FP32_BYTES = 4


@dataclass
class LayerRow:
    """One module call: what it produced and what it cost."""

    name: str
    type: str
    leaf: bool
    output_shapes: list[list[int]] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    activation_bytes: int = 0
    field: Field | None = None

    def to_dict(self) -> dict:
        """JSON-ready row; `rf`, `jump`, `start` are one number when equal on every axis."""
        f = self.field
        shape = self.output_shapes[0] if len(self.output_shapes) == 1 else self.output_shapes
        return {"name": self.name, "type": self.type, "output_shape": shape, "params": self.params,
                "macs": self.macs, "activation_bytes": self.activation_bytes,
                "rf": axis_value([a.size for a in f]) if f else None,
                "jump": axis_value([a.jump for a in f]) if f else None,
                "start": axis_value([a.start for a in f]) if f else None}


def axis_value(values: list[float | None]) -> Any:
    """One number (int when whole) if all axes agree, else the per-axis list; None stays None."""
    clean = [None if v is None else (int(v) if float(v).is_integer() else round(v, 3)) for v in values]
    return clean[0] if len(set(clean)) == 1 else clean


@dataclass
class ModelSummary:
    """Rows in call order, the example input's shapes, and parameters no op of the pass used."""

    layers: list[LayerRow]
    input_shapes: list[list[int]]
    unused_params: int

    def totals(self) -> dict:
        """Sums over the rows: params, macs, activation_bytes."""
        return {key: sum(getattr(row, key) for row in self.layers)
                for key in ("params", "macs", "activation_bytes")}

    def to_dict(self) -> dict:
        """`{"input_shapes", "layers": [...], "totals": {...}, "unused_params"}`."""
        return {"input_shapes": self.input_shapes, "layers": [r.to_dict() for r in self.layers],
                "totals": self.totals(), "unused_params": self.unused_params}


class _Walk(FieldTracker):
    """FieldTracker that also charges MACs and first parameter uses to the running module."""

    def __init__(self) -> None:
        super().__init__()
        self.running: list[LayerRow] = []
        self.used: set[int] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: D105
        kwargs = kwargs or {}
        out = super().__torch_function__(func, types, args, kwargs)
        if self.running:
            row = self.running[-1]
            row.macs += op_macs(func, args, kwargs, out)
            for t in tensors_in((args, kwargs)):
                if isinstance(t, nn.Parameter) and id(t) not in self.used:
                    self.used.add(id(t))
                    row.params += t.numel()
        return out


def _hook(walk: _Walk, rows: list[LayerRow], name: str, module: nn.Module, stack: ExitStack) -> None:
    leaf = next(module.children(), None) is None

    def before(mod: nn.Module, args: Any) -> None:
        row = LayerRow(name or type(mod).__name__, type(mod).__name__, leaf)
        rows.append(row)
        walk.running.append(row)

    def after(mod: nn.Module, args: Any, output: Any) -> None:
        row = walk.running.pop()
        outputs = list({id(t): t for t in tensors_in(output)}.values())
        row.output_shapes = [list(t.shape) for t in outputs]
        row.activation_bytes = sum(t.numel() for t in outputs) * FP32_BYTES
        row.field = walk.field(outputs[0]) if outputs else None

    stack.callback(module.register_forward_pre_hook(before).remove)
    stack.callback(module.register_forward_hook(after).remove)


def layer_summary(model: nn.Module, example: Any, spatial_dims: int = 2) -> ModelSummary:
    """Run `model(example)` once (eval mode, no grad) and summarise every layer call.

    example: a batch tensor `[1, C, H, W]` for classifiers, a list of `[C, H, W]` images for
    detectors; its last `spatial_dims` axes are the ones receptive fields are measured on.
    """
    rows: list[LayerRow] = []
    walk = _Walk()
    with ExitStack() as stack:
        for name, module in model.named_modules():
            _hook(walk, rows, name, module, stack)
        with evaluating(model), torch.no_grad(), walk:
            for tensor in tensors_in(example):
                walk.track(tensor, spatial_dims)
            model(example)
    total = sum(p.numel() for p in model.parameters())
    kept = [r for r in rows if r.leaf or r.params or r.macs]
    return ModelSummary(kept, [list(t.shape) for t in tensors_in(example)],
                        total - sum(r.params for r in kept))
