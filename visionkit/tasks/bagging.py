"""Bagging: the same classification run N times, each on its own bootstrap resample of the
training split (`visionkit classify bag`).

Member i runs `classify fit` with the given flags plus ``--seed_everything i
--data.bootstrap_seed i --trainer.default_root_dir <bag folder>/member_i``, so every member is
reproducible and its checkpoints record the resample it saw (the bag folder replaces any
``--trainer.default_root_dir``). Validation is the same split for all: what the ensemble is
scored on (`visionkit.inference.ensemble`). One process per member: no DDP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from visionkit.errors import ConfigError
from visionkit.tasks.classification import ClassificationTask
from visionkit.tasks.cli import run_cli
from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule


@dataclass
class BagMember:
    """One member's seed, best checkpoint and its logged val_acc."""

    seed: int
    best_model_path: str
    best_val_acc: float


def fit_bag(fit_args: list[str], members: int, folder: str | os.PathLike
            ) -> tuple[list[BagMember], list[tuple[str, int]], list[str]]:
    """Train ``members`` bootstrap members with `classify fit`'s ``fit_args``; return them, the
    validation samples ``(path, label)`` and the class names."""
    runs: list[BagMember] = []
    val_samples: list[tuple[str, int]] = []
    classes: list[str] = []
    for seed in range(members):
        cli = run_cli(ClassificationTask, ImageFolderDataModule,
                      ["fit", *fit_args, "--seed_everything", str(seed), "--data.bootstrap_seed",
                       str(seed), "--trainer.default_root_dir", str(Path(folder) / f"member_{seed}")],
                      prog="visionkit classify bag")
        callback = cli.trainer.checkpoint_callback
        if callback is None or callback.best_model_score is None:
            raise ConfigError(f"bag member {seed}: no validation ran, so there is no best checkpoint "
                              f"to score (does --trainer.limit_val_batches or max_epochs skip it?)")
        runs.append(BagMember(seed, callback.best_model_path, float(callback.best_model_score)))
        val_samples = [(str(p), int(label)) for p, label in cli.datamodule.val_set.samples]
        classes = list(cli.datamodule.classes)
    return runs, val_samples, classes
