"""LightningCLI for visionkit tasks: YAML configs map onto constructor arguments, every one a flag.

Adds: data → model links (classes, image size), CSV + TensorBoard loggers under
`trainer.default_root_dir` (one `version_N/` folder per run), atomic checkpoint writes,
``--ckpt_path last`` resolved across those folders (the newest run's ``last.ckpt``, or a fresh
start when there is none, so the same command starts and resumes a run), and a check that
`--ckpt_path` fits the task, the data's classes and the model before Lightning loads it.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from visionkit.checkpoint_record import CheckpointRecord, read_record
from visionkit.errors import ConfigError
from visionkit.models.weights import load_checkpoint_file, state_dict_mismatch
from visionkit.tasks.trainer import default_loggers, with_atomic_checkpoints

LIGHTNING_VERSION_KEY = "pytorch-lightning_version"  # in every checkpoint a Trainer writes
LIGHTNING_CKPT_NAMES = ("best", "hpc", "registry")  # --ckpt_path values Lightning resolves itself


def check_checkpoint_fits(path: str | os.PathLike, task: L.LightningModule) -> None:
    """Raise `ConfigError` saying what to change unless ``task`` can resume from or evaluate ``path``.

    The file's `CheckpointRecord` is compared with the one ``task`` would save: the task, the
    classes (from the data), then the weights' keys and shapes.
    """
    data = load_checkpoint_file(path)
    want: CheckpointRecord = task.checkpoint_record()
    got = read_record(data, path, want.task,
                      hint=f"pass last.ckpt or best.ckpt of a {want.task} fit")
    if got.labels() != want.labels():
        raise ConfigError(f"{path}: trained with {got.labels()} but the data gives {want.labels()}; "
                          f"use the data it was trained on, or fine-tune from it with "
                          f"--model.pretrained {path} instead of --ckpt_path")
    problem = state_dict_mismatch(task.state_dict(), data.get("state_dict") or {})
    if problem:
        differ = {k: v for k, v in got.model.items() if want.model.get(k) != v}
        raise ConfigError(f"{path}: weights do not fit this run's model ({problem}); build the "
                          f"model it was trained with, whose arguments differ: {differ}")
    if LIGHTNING_VERSION_KEY not in data:
        raise ConfigError(f"{path}: an inference-only checkpoint without training state; "
                          f"--ckpt_path needs last.ckpt or best.ckpt of a fit (or start from its "
                          f"weights with --model.pretrained {path})")


def latest_last_checkpoint(root: str | os.PathLike) -> Path | None:
    """``root/version_N/checkpoints/last.ckpt`` of the highest N that has one, else None."""
    found = [(int(m.group(1)), p) for p in Path(root).glob("version_*/checkpoints/last.ckpt")
             if (m := re.fullmatch(r"version_(\d+)", p.parents[1].name))]
    return max(found)[1] if found else None


class VisionkitCLI(LightningCLI):
    """LightningCLI with visionkit's links, loggers, checkpoint IO and `--ckpt_path` check."""

    def add_arguments_to_parser(self, parser) -> None:
        """The data decides the model's classes (and a classifier's input size, a detector's
        category ids): what the data module has is linked into the task's argument of that name."""
        data = self.datamodule_class
        if data is None or not hasattr(data, "num_classes"):
            return
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.classes", "model.class_names", apply_on="instantiate")
        if hasattr(data, "category_ids"):
            parser.link_arguments("data.category_ids", "model.category_ids", apply_on="instantiate")
        else:
            parser.link_arguments("data.image_size", "model.image_size")

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> L.Trainer:
        if config.get("logger") in (None, True):
            config["logger"] = default_loggers(config.get("default_root_dir") or "runs/default")
        config["plugins"] = with_atomic_checkpoints(config.get("plugins"))
        return super()._instantiate_trainer(config, callbacks)

    def before_fit(self) -> None:
        """Resolve `--ckpt_path last`, then check the file against the task before Lightning loads it."""
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") == "last":
            config["ckpt_path"] = latest_last_checkpoint(self.trainer.default_root_dir)
            rank_zero_info(f"--ckpt_path last: {config['ckpt_path'] or 'no earlier run, starting fresh'}")
        ckpt = config.get("ckpt_path")
        if ckpt is None or str(ckpt) in LIGHTNING_CKPT_NAMES:
            return
        if not Path(ckpt).is_file():
            raise ConfigError(f"--ckpt_path {ckpt}: no such file (pass a checkpoint file, or 'last' to "
                              f"resume the newest run under --trainer.default_root_dir)")
        check_checkpoint_fits(ckpt, self.model)

    before_validate = before_test = before_fit

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        finally:
            # A process group left to interpreter exit can abort it (gloo: "terminate called
            # without an active exception"), turning a finished DDP run into exit code -6.
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


def run_cli(model_class: type, datamodule_class: type, args: list[str], prog: str) -> VisionkitCLI:
    """Run `fit|validate|test` with `args` (as LightningCLI parses them)."""
    # LightningCLI warns when sys.argv also holds arguments; ours are sys.argv minus the prefix.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    return VisionkitCLI(model_class, datamodule_class, args=args,
                        save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": prog})
