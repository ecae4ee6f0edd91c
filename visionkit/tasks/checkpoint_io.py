"""Checkpoint writing that never leaves a half-written file: temp file, fsync, rename."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from visionkit.fileio import atomic_write_with


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose saves are atomic on local file systems."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        """Write `checkpoint` to `path` atomically."""
        atomic_write_with(path, lambda tmp: torch.save(checkpoint, tmp))


def save_task_checkpoint(task: L.LightningModule, path: str | os.PathLike) -> Path:
    """Write ``task``'s weights and inference metadata as `fit` would, without a Trainer (atomic)."""
    checkpoint: dict[str, Any] = {"state_dict": task.state_dict()}
    task.on_save_checkpoint(checkpoint)
    return atomic_write_with(path, lambda tmp: torch.save(checkpoint, tmp))
