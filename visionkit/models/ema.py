"""Exponential moving average (EMA) of a model's weights, as timm, detectron2 and Ultralytics keep.

After each optimizer step every floating-point entry of the state dict (parameters and
BatchNorm statistics) moves towards the model's: ``ema = d * ema + (1 - d) * weight``, with
``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates (TensorFlow's warm-up: early weights
are forgotten fast, so a short fine-tune is not dominated by the initial weights); integer
entries are copied. `swap` exchanges the averaged and the live weights in place (evaluate the
average, then swap back). Plain torch: usable in any training loop.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class WeightEMA:
    """The moving average of ``model``'s state dict.

    Args:
        model: the model whose weights are averaged (its current weights start the average).
        decay: the largest per-step decay, e.g. 0.999 (in ``[0, 1)``).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {name: value.detach().clone() for name, value in model.state_dict().items()}
        self.swapped = False

    def current_decay(self) -> float:
        """The decay the next update uses."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s weights (after an optimizer step)."""
        if self.swapped:
            raise RuntimeError("the EMA weights are swapped into the model; swap back first")
        decay = self.current_decay()
        for name, value in model.state_dict().items():
            shadow = self.shadow[name]
            if shadow.device != value.device:
                shadow = self.shadow[name] = shadow.to(value.device)
            if value.is_floating_point():
                shadow.lerp_(value.detach().to(shadow.dtype), 1.0 - decay)
            else:
                shadow.copy_(value)
        self.updates += 1

    @torch.no_grad()
    def swap(self, model: nn.Module) -> None:
        """Exchange the model's weights and the averaged ones (call twice to undo)."""
        state = model.state_dict()
        for name, value in state.items():
            held = self.shadow[name].to(value.device)
            live = value.detach().clone()
            value.copy_(held)
            self.shadow[name] = live
        self.swapped = not self.swapped

    def averaged(self, model: nn.Module) -> dict[str, Tensor]:
        """The averaged weights, whichever set the model holds now."""
        return dict(model.state_dict()) if self.swapped else dict(self.shadow)

    def live(self, model: nn.Module) -> dict[str, Tensor]:
        """The trained (not averaged) weights, whichever set the model holds now."""
        return dict(self.shadow) if self.swapped else dict(model.state_dict())
