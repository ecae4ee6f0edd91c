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
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from visionkit.checkpoint_record import CheckpointRecord, read_record
from visionkit.errors import ConfigError
from visionkit.models.weights import load_checkpoint_file, state_dict_mismatch
from visionkit.tasks.trainer import default_loggers, quiet_lightning, with_atomic_checkpoints

LIGHTNING_VERSION_KEY = "pytorch-lightning_version"  # in every checkpoint a Trainer writes
LIGHTNING_CKPT_NAMES = ("best", "hpc", "registry")  # --ckpt_path values Lightning resolves itself
# The task arguments that a resume takes from the checkpoint's optimizer and scheduler state.
OPTIMIZER_ARGUMENTS = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "scheduler",
                       "warmup_epochs", "step_epochs", "gamma", "group_lr_decay", "backbone_lr_scale")
CKPT_PATH_HELP = {  # by "is it fit?"
    True: "resume a fit: a last.ckpt/best.ckpt written by `fit`, or 'last' for the newest "
          "run's last.ckpt under --trainer.default_root_dir (a fresh start when there is none); "
          "a run resumed from its own folder goes on there, its best.ckpt the best of the job",
    False: "the checkpoint to evaluate (last.ckpt/best.ckpt of a fit, or 'last' for the newest "
           "run's); evaluated with the input size, crop and normalisation it was trained with",
}


def check_checkpoint_fits(path: str | os.PathLike, task: L.LightningModule, resume: bool = False
                          ) -> CheckpointRecord:
    """``path``'s record; raise `ConfigError` saying what to change unless ``task`` can evaluate
    ``path`` (or, with ``resume``, go on training from it: that takes the optimizer state).

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
    if resume and "optimizer_states" not in data:
        raise ConfigError(f"{path}: holds the weights only (best.ckpt does), not the optimizer "
                          f"state to resume; resume from last.ckpt (or 'last'), or start a new "
                          f"fit from these weights with --model.pretrained {path}")
    # Two checks on one concern. This one compares the optimizer's layout, so it also catches a
    # checkpoint written before backbone_lr_scale was saved; the argument check below names any
    # other optimizer or schedule argument that the restored state would override.
    if resume and hasattr(task, "optimizer_groups"):  # the optimizer state is per parameter group
        saved, groups = len(data["optimizer_states"][0]["param_groups"]), len(task.optimizer_groups())
        if saved != groups:
            scale = (data.get("hyper_parameters") or {}).get("backbone_lr_scale", 1.0)
            raise ConfigError(f"{path}: its optimizer has {saved} parameter groups, this run's "
                              f"{groups}; resume with the LR split it was trained with "
                              f"(--model.backbone_lr_scale {scale})")
    if resume:  # the restored optimizer and scheduler state would override these silently
        saved_hp, hp = data.get("hyper_parameters") or {}, task.hparams
        for key in OPTIMIZER_ARGUMENTS:
            if key in saved_hp and key in hp and _plain(saved_hp[key]) != _plain(hp[key]):
                raise ConfigError(f"{path}: trained with {key} {saved_hp[key]}, this run asks for "
                                  f"{hp[key]}; a resumed run keeps its optimizer and schedule: "
                                  f"drop --model.{key}, or start a new fit from these weights "
                                  f"with --model.pretrained {path}")
    return got


def _plain(value: Any) -> Any:
    """A tuple as a list (YAML, the CLI and a checkpoint may spell a sequence either way)."""
    return list(value) if isinstance(value, tuple) else value


def latest_last_checkpoint(root: str | os.PathLike) -> Path | None:
    """``root/version_N/checkpoints/last.ckpt`` of the highest N that has one, else None."""
    found = [(int(m.group(1)), p) for p in Path(root).glob("version_*/checkpoints/last.ckpt")
             if (m := re.fullmatch(r"version_(\d+)", p.parents[1].name))]
    return max(found)[1] if found else None


# Arguments naming files or folders: made absolute, so a run's saved config.yaml works from anywhere.
PATH_ARGUMENTS = ("data.root", "data.train_json", "data.val_json", "data.test_json",
                  "data.image_root", "data.proposal_cache", "model.pretrained",
                  "model.pretrained_backbone", "trainer.default_root_dir")


# The model's arguments that the data module fills in when both are built (target: source).
LINKED_FROM_DATA = {"model.num_classes": "data.num_classes", "model.class_names": "data.classes",
                    "model.category_ids": "data.category_ids"}


class VisionkitCLI(LightningCLI):
    """LightningCLI with visionkit's links, loggers, checkpoint IO and `--ckpt_path` check."""

    def parse_arguments(self, parser, args) -> None:
        """Parse, and refuse a config that sets what the data decides (jsonargparse would
        silently replace it). Checked before Lightning adds a ``--ckpt_path``'s hyperparameters."""
        super().parse_arguments(parser, args)
        config = self.config.get(self.config.get("subcommand") or "", self.config)
        for target, source in LINKED_FROM_DATA.items():
            if config.get(target) is not None:
                raise ConfigError(f"{target}: comes from the data ({source}), not from a config; "
                                  f"remove it from the config file")

    def before_instantiate_classes(self) -> None:
        """Relative paths become absolute (existing ones; the run root always)."""
        config = self.config[self.subcommand]
        for key in PATH_ARGUMENTS:
            try:
                value = config[key]
            except KeyError:
                continue
            if isinstance(value, str) and (key == "trainer.default_root_dir" or Path(value).exists()):
                config[key] = str(Path(value).resolve())

    def add_arguments_to_parser(self, parser) -> None:
        """The data decides the model's classes (and a classifier's input size, a detector's
        category ids): what the data module has is linked into the task's argument of that name."""
        data = self.datamodule_class
        if data is None or not hasattr(data, "num_classes"):
            return
        detection = hasattr(data, "category_ids")
        for target, source in LINKED_FROM_DATA.items():
            if detection or source != "data.category_ids":
                parser.link_arguments(source, target, apply_on="instantiate")
        if not detection:
            parser.link_arguments("data.image_size", "model.image_size")

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any):
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        for action in parser._actions:  # Lightning's text describes its own keywords, not ours
            if action.dest == "ckpt_path":
                action.help = CKPT_PATH_HELP[subcommand == "fit"]
        return parser

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> L.Trainer:
        root = config.get("default_root_dir") or "runs/default"
        self._resolve_last(root)
        if config.get("logger") in (None, True):
            resume = self._resumed_run(root) if self.subcommand == "fit" else None
            config["logger"] = default_loggers(root, resume)
        config["plugins"] = with_atomic_checkpoints(config.get("plugins"))
        return super()._instantiate_trainer(config, callbacks)

    def _resolve_last(self, root: str) -> None:
        """``--ckpt_path last``: the newest run's last.ckpt under ``root``; none starts a fit
        fresh (so one command starts and resumes a job) and stops validate/test."""
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") != "last":
            return
        config["ckpt_path"] = latest_last_checkpoint(root)
        if config["ckpt_path"] is None and self.subcommand != "fit":
            raise ConfigError(f"--ckpt_path last: no version_N/checkpoints/last.ckpt under {root}")
        rank_zero_info(f"--ckpt_path last: {config['ckpt_path'] or 'no earlier run, starting fresh'}")

    def _resumed_run(self, root: str) -> tuple[int, int] | None:
        """``(N, epoch)`` when fit resumes from a checkpoint of ``root/version_N``: the job goes
        on in its own folder, so its metrics continue and `best.ckpt` stays the job's best."""
        ckpt = self.config_init[self.subcommand].get("ckpt_path")
        if ckpt is None or not Path(ckpt).is_file():
            return None
        path = Path(ckpt).resolve()
        match = re.fullmatch(r"version_(\d+)", path.parents[1].name)
        if path.parent.name != "checkpoints" or not match or path.parents[2] != Path(root).resolve():
            return None
        epoch = load_checkpoint_file(path, mmap=True).get("epoch")  # tensors mapped, not read
        return (int(match.group(1)), int(epoch)) if isinstance(epoch, int) else None

    def before_fit(self) -> None:
        """Check `--ckpt_path` against the task before Lightning loads it (validate and test also
        take the checkpoint's input preprocessing)."""
        ckpt = self.config_init[self.subcommand].get("ckpt_path")
        if ckpt is None or str(ckpt) in LIGHTNING_CKPT_NAMES:
            return
        if not Path(ckpt).is_file():
            raise ConfigError(f"--ckpt_path {ckpt}: no such file (pass a checkpoint file, or 'last' to "
                              f"resume the newest run under --trainer.default_root_dir)")
        record = check_checkpoint_fits(ckpt, self.model, resume=self.subcommand == "fit")
        adopt = getattr(self.datamodule, "use_preprocessing_of", None)
        if adopt is None:
            return
        if self.subcommand == "fit":
            if record.image_size is not None and record.image_size != self.datamodule.image_size:
                raise ConfigError(f"{ckpt}: trained at image_size {record.image_size}, this run has "
                                  f"{self.datamodule.image_size}; resume with --data.image_size "
                                  f"{record.image_size}")
            return
        changed = adopt(record)
        if changed:  # the figures must be those of the model as trained, not of this config
            rank_zero_info(f"{self.subcommand} with {Path(ckpt).name}'s preprocessing: {', '.join(changed)}")

    before_validate = before_test = before_fit

    def after_fit(self) -> None:
        """End a fit with one line: the best checkpoint, its score and the run folder."""
        log_dir = self.trainer.log_dir  # a broadcast under DDP: every rank must ask
        if not self.trainer.is_global_zero:
            return
        for callback in self.trainer.checkpoint_callbacks:
            if callback.monitor and callback.best_model_path and callback.best_model_score is not None:
                print(f"best {callback.monitor} {float(callback.best_model_score):.4f}: "
                      f"{callback.best_model_path} (run folder {log_dir})")

    def _run_subcommand(self, subcommand: str) -> None:
        run_dir = Path(self.trainer.log_dir) if self.trainer.log_dir else None
        new_run = run_dir is not None and not run_dir.exists()
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            # A run that failed before its first step leaves no folder behind (the next run
            # would otherwise become version_N+1 for nothing).
            if new_run and self.trainer.global_step == 0 and self.trainer.is_global_zero:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        finally:
            # A process group left to interpreter exit can abort it (gloo: "terminate called
            # without an active exception"), turning a finished DDP run into exit code -6.
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


def run_cli(model_class: type, datamodule_class: type, args: list[str], prog: str) -> VisionkitCLI:
    """Run `fit|validate|test` with `args` (as LightningCLI parses them)."""
    quiet_lightning()
    try:
        # The tasks configure their own optimizer and schedule (--model.optimizer, ...): no
        # generic --optimizer/--lr_scheduler beside them. Runs are seeded (0) unless told.
        return VisionkitCLI(model_class, datamodule_class, args=args, seed_everything_default=0,
                            auto_configure_optimizers=False,
                            save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": prog})
    except MisconfigurationException as err:  # e.g. --trainer.accelerator gpu on a CPU machine
        raise ConfigError(str(err).strip().splitlines()[0]) from None
