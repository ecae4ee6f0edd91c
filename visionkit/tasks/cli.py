"""LightningCLI for visionkit tasks: YAML configs map onto constructor arguments, every one a flag.

Adds: data → model links (classes, image size), CSV + TensorBoard loggers under
`trainer.default_root_dir` (one `version_N/` folder per run), and atomic checkpoint writes.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningCLI

from visionkit.tasks.trainer import default_loggers, with_atomic_checkpoints


class VisionkitCLI(LightningCLI):
    """LightningCLI with visionkit's links, loggers and checkpoint IO."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        if self.datamodule_class is not None and hasattr(self.datamodule_class, "num_classes"):
            parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
            parser.link_arguments("data.classes", "model.class_names", apply_on="instantiate")
            parser.link_arguments("data.image_size", "model.image_size")

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> L.Trainer:
        if config.get("logger") in (None, True):
            config["logger"] = default_loggers(config.get("default_root_dir") or "runs/default")
        config["plugins"] = with_atomic_checkpoints(config.get("plugins"))
        return super()._instantiate_trainer(config, callbacks)


def run_cli(model_class: type, datamodule_class: type, args: list[str], prog: str) -> VisionkitCLI:
    """Run `fit|validate|test` with `args` (as LightningCLI parses them)."""
    # LightningCLI warns when sys.argv also holds arguments; ours are sys.argv minus the prefix.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    return VisionkitCLI(model_class, datamodule_class, args=args,
                        save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": prog})
