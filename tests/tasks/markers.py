"""A callback the kill-and-resume trials add to a run to know when it is validating."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L


class ValidationMarker(L.Callback):
    """Touches ``path`` at the first validation batch after epoch 0 and holds that batch for
    ``hold`` seconds: a window in which to kill the run mid-validation. Draws no random numbers
    and changes no state, so the run's results are those of a run without it."""

    def __init__(self, path: str, hold: float = 1.0) -> None:
        self.path, self.hold = Path(path), hold

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:  # noqa: D102
        if trainer.sanity_checking or trainer.current_epoch < 1 or self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        time.sleep(self.hold)
