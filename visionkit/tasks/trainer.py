"""Trainer defaults shared by the CLI and programmatic runs: loggers and atomic checkpoints."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from visionkit.tasks.checkpoint_io import AtomicCheckpointIO


def default_loggers(root: str) -> list:
    """CSV (`metrics.csv`) and TensorBoard loggers sharing one `root/version_N/` folder."""
    csv = CSVLogger(root, name="")
    return [csv, TensorBoardLogger(root, name="", version=csv.version, default_hp_metric=False)]


def with_atomic_checkpoints(plugins: Any) -> list:
    """`plugins` as a list, with AtomicCheckpointIO added unless a checkpoint IO is given."""
    plugins = list(plugins) if isinstance(plugins, list | tuple) else ([plugins] if plugins else [])
    if not any(hasattr(p, "save_checkpoint") for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins


def build_trainer(root: str, **kwargs: Any) -> L.Trainer:
    """A Trainer writing under `root` with visionkit's loggers and checkpoint IO."""
    kwargs.setdefault("logger", default_loggers(root))
    kwargs["plugins"] = with_atomic_checkpoints(kwargs.get("plugins"))
    return L.Trainer(default_root_dir=root, **kwargs)
