"""Weight EMA inside the tasks (``--model.ema_decay``): updated after each optimizer step, used for
validation and testing, and the weights every checkpoint's ``state_dict`` holds.

A task holds a `TaskEMA` as ``self.ema`` (None when off), adds the `EMAHooks` callback (the
update and the swaps around validation and testing), and calls `TaskEMA.save` / `TaskEMA.load`
from its own checkpoint hooks (a callback's are not called for weights-only checkpoints, nor
before the weights are loaded).

A checkpoint's ``state_dict`` holds the averaged weights, so predict, export, validate and
`visionkit.load` use them with no further step. A full checkpoint (``last.ckpt``) also keeps the
trained weights and the update count, so a resumed run continues exactly; a weights-only one
(``best.ckpt``) keeps the average only.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import nn

from visionkit.models.ema import WeightEMA

TRAINED_WEIGHTS = "visionkit_trained_weights"  # model entries of the state dict, prefix removed
EMA_UPDATES = "visionkit_ema_updates"


class TaskEMA:
    """What a task calls from its hooks; ``prefix`` is the model's key prefix in the state dict.

    Args:
        model: the task's model.
        decay: see `WeightEMA`.
        prefix: e.g. ``"model."`` for a task holding its network as ``self.model``.
    """

    def __init__(self, model: nn.Module, decay: float, prefix: str = "model.") -> None:
        self.ema = WeightEMA(model, decay)
        self.prefix = prefix
        self.step = 0  # the optimizer step the average last saw

    def after_batch(self, model: nn.Module, global_step: int) -> None:
        """Update once per optimizer step (with gradient accumulation, not after every batch)."""
        if global_step > self.step:
            self.ema.update(model)
            self.step = global_step

    def begin_eval(self, model: nn.Module) -> None:
        """Put the averaged weights into the model for validation or testing."""
        if not self.ema.swapped:
            self.ema.swap(model)

    def end_eval(self, model: nn.Module) -> None:
        """Put the trained weights back."""
        if self.ema.swapped:
            self.ema.swap(model)

    def save(self, checkpoint: dict, model: nn.Module) -> None:
        """``state_dict`` ← the average; full checkpoints also keep the trained weights."""
        state = checkpoint["state_dict"]
        for name, value in self.ema.averaged(model).items():
            state[self.prefix + name] = value.detach().clone()
        if "optimizer_states" in checkpoint:  # a full checkpoint: enough to resume exactly
            checkpoint[TRAINED_WEIGHTS] = {n: v.detach().clone() for n, v in self.ema.live(model).items()}
            checkpoint[EMA_UPDATES] = [self.ema.updates, self.step]

    def load(self, checkpoint: dict) -> None:
        """Before Lightning loads ``state_dict``: the average into the EMA and, where the
        checkpoint has them, the trained weights into ``state_dict`` (else training goes on
        from the average)."""
        state = checkpoint["state_dict"]
        averaged = {name[len(self.prefix):]: value for name, value in state.items()
                    if name.startswith(self.prefix)}
        self.ema.shadow = {name: value.detach().clone() for name, value in averaged.items()}
        self.ema.swapped = False
        trained = checkpoint.get(TRAINED_WEIGHTS)
        if trained is not None:
            for name, value in trained.items():
                state[self.prefix + name] = value
            self.ema.updates, self.step = checkpoint[EMA_UPDATES]


class EMAHooks(L.Callback):
    """Drives the task's ``ema``: one update per optimizer step, the average swapped in for each
    validation and test epoch and out at its end, and out again should the run stop in between."""

    @staticmethod
    def _swap_out(pl_module: L.LightningModule) -> None:
        pl_module.ema.end_eval(pl_module.model)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: D102
        self._swap_out(pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:  # noqa: D102
        pl_module.ema.after_batch(pl_module.model, trainer.global_step)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: D102
        pl_module.ema.begin_eval(pl_module.model)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: D102
        self._swap_out(pl_module)

    on_test_epoch_start = on_validation_epoch_start
    on_test_epoch_end = on_validation_epoch_end

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:  # noqa: D102
        self._swap_out(pl_module)
