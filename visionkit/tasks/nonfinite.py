"""Non-finite losses: the step is skipped and reported; N in a row stop the run after a checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from visionkit.errors import TrainingError

CHECKPOINT_NAME = "last_finite.ckpt"


class NonFiniteGuard:
    """Decides per step whether a loss may be used; the decision is the same on every rank.

    A non-finite loss (on any rank) skips the optimizer step everywhere, puts back the buffers
    the forward pass changed (BatchNorm statistics) and warns with the batch's images; ``limit``
    such steps in a row save a checkpoint of the weights, which no skipped step changed, and
    raise `TrainingError`. Call `before_forward` at the start of each training step.
    """

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self.in_a_row = 0
        self._buffers: list[torch.Tensor] = []

    def before_forward(self, task: L.LightningModule) -> None:
        """Remember the module's buffers, to undo a skipped step's updates."""
        self._buffers = [b.detach().clone() for b in task.buffers()]

    def usable(self, task: L.LightningModule, loss: torch.Tensor, images: Sequence) -> bool:
        """True when ``loss`` is finite on every rank; else report, and stop after ``limit``."""
        bad = task.trainer.strategy.reduce_boolean_decision(not bool(torch.isfinite(loss)), all=False)
        if not bad:
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        with torch.no_grad():
            for saved, buffer in zip(self._buffers, task.buffers()):
                buffer.copy_(saved)
        shown = ", ".join(str(i) for i in list(images)[:8]) + (" …" if len(images) > 8 else "")
        rank_zero_warn(f"step {task.global_step}: loss is {float(loss.detach())} (on some rank); step "
                       f"skipped ({self.in_a_row} in a row); this rank's batch: {shown}")
        if self.in_a_row >= self.limit:
            folder = Path(task.trainer.log_dir or task.trainer.default_root_dir) / "checkpoints"
            path = folder / CHECKPOINT_NAME
            task.trainer.save_checkpoint(path)
            raise TrainingError(f"{self.limit} steps in a row had a non-finite loss (last at step "
                                f"{task.global_step}); the last good weights are in {path}; lower the "
                                f"lr, lengthen the warmup or check the images listed above")
        return False
