"""Lightning callbacks: gradual unfreezing, per-epoch seeding, the report of files skipped while reading."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from visionkit.data.epoch_seeding import EpochSeededSampler, seed_for_epoch
from visionkit.distributed import gather_objects
from visionkit.fileio import atomic_open
from visionkit.models.transfer import set_group_trainable, trainable_deepest


class EpochSeeding(L.Callback):
    """Reseed the main process (dropout, MixUp) from (run seed, epoch) as each training epoch
    starts, so a run resumed at epoch e draws what an uninterrupted one draws there."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Keep the run's seed (`seed_everything`'s) before any epoch reseeds torch."""
        self.seed = torch.initial_seed()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Seed torch, NumPy and `random` for this epoch; redraw a train order drawn too early."""
        seed_for_epoch(self.seed, trainer.current_epoch)
        loop = trainer.fit_loop
        restarts_later = trainer.current_epoch > 0 and not loop.is_resuming and not loop.epoch_loop.restarting
        sampler = _epoch_seeded_sampler(getattr(trainer.train_dataloader, "sampler", None))
        if sampler is not None and sampler.drawn_for != trainer.current_epoch and not restarts_later:
            # On resume Lightning starts the train iterator before it restores the epoch counter
            # (and workers prefetch at once): start it again for the epoch that actually runs.
            iter(loop._data_fetcher)


def _epoch_seeded_sampler(sampler: Any) -> EpochSeededSampler | None:
    """Our sampler, as the loader's or inside Lightning's DDP ``DistributedSamplerWrapper``
    (which shards the order ours draws; it keeps ours as ``dataset._sampler``)."""
    for candidate in (sampler, getattr(getattr(sampler, "dataset", None), "_sampler", None)):
        if isinstance(candidate, EpochSeededSampler):
            return candidate
    return None


class GradualUnfreezing(BaseFinetuning):
    """Train the head alone, then unfreeze one more layer group (deep → shallow) every N epochs.

    All parameters sit in the optimizer from the start (frozen ones get no gradient), so the
    per-group LRs and the LR schedule cover each group from the moment it thaws. The state
    for epoch e is recomputed from e, so a resumed run lands on the same frozen set.
    """

    def __init__(self, unfreeze_every: int = 1) -> None:
        super().__init__()
        self.unfreeze_every = max(1, unfreeze_every)

    def trainable_groups(self, epoch: int) -> int:
        """How many of the deepest groups (head included) train in `epoch`."""
        return 1 + epoch // self.unfreeze_every

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        """Freeze everything but the head."""
        groups = pl_module.model.layer_groups()
        set_group_trainable(groups, trainable_deepest(groups, 1))

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Any) -> None:
        """Set the frozen/trainable split for `epoch`."""
        groups = pl_module.model.layer_groups()
        n = min(len(groups), self.trainable_groups(epoch))
        set_group_trainable(groups, trainable_deepest(groups, n))
        pl_module.model.train(pl_module.training)
        if epoch > 0 and epoch % self.unfreeze_every == 0 and n == self.trainable_groups(epoch):
            rank_zero_info(f"gradual unfreezing: epoch {epoch} trains the {n} deepest of "
                           f"{len(groups)} layer groups")


class MetricHistory(L.Callback):
    """Records every logged ``val_*`` metric after each validation epoch (sanity checks left
    out), with the epoch and the seconds since training started.

    Args:
        monitors: metrics `values` lists (a metric not logged in an epoch gives NaN there).
        echo: also print each row as a JSON line on stderr (progress of long benchmark runs).
    """

    def __init__(self, monitors: Sequence[str] = ("val_acc",), echo: bool = False) -> None:
        self.monitors = tuple(monitors)
        self.echo = echo
        self.rows: list[dict[str, float]] = []  # {"epoch", "seconds", "val_...": value}
        self.started = time.perf_counter()

    @property
    def values(self) -> dict[str, list[float]]:
        """Each monitored metric, one value per validation."""
        return {name: [row.get(name, float("nan")) for row in self.rows] for name in self.monitors}

    @property
    def elapsed(self) -> list[float]:
        """Seconds from the start of training to the end of each validation."""
        return [row["seconds"] for row in self.rows]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the clock."""
        self.started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Append the epoch's row (this hook runs after the module's ``on_validation_epoch_end``,
        where tasks log their metrics)."""
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch, "seconds": time.perf_counter() - self.started,
               **{k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}}
        self.rows.append(row)
        if self.echo:
            print(json.dumps(rounded(row)), file=sys.stderr, flush=True)


def rounded(row: dict[str, float]) -> dict[str, float]:
    """A `MetricHistory` row for JSON: seconds to 0.1, metrics to 4 decimals."""
    return {k: v if k == "epoch" else round(v, 1 if k == "seconds" else 4) for k, v in row.items()}


class StepClock(L.Callback):
    """Times training from the start of batch ``skip``'s step to the end of the last batch's."""

    def __init__(self, skip: int = 0) -> None:
        self.skip = skip
        self.started = self.ended = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: D102
        if batch_idx == self.skip:
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: D102
        self.ended = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Seconds between the two hooks."""
        return self.ended - self.started


class SkippedFilesReport(L.Callback):
    """Collects files left out while scanning or reading and reports them at the end of a run."""

    def __init__(self) -> None:
        self.skipped: dict[str, str] = {}

    def _collect(self, batch: Any) -> None:
        if isinstance(batch, dict):
            self.skipped.update(dict(batch.get("skipped", [])))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: D102
        self._collect(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx,
                                  dataloader_idx: int = 0) -> None:  # noqa: D102
        self._collect(batch)

    def _report(self, trainer: L.Trainer) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank must ask
        dm = trainer.datamodule
        skipped = dict(getattr(dm, "skipped", []) or [])
        for part in gather_objects(self.skipped):  # files each rank's loader left out
            skipped.update(part)
        if not skipped or not trainer.is_global_zero:
            return
        out = Path(log_dir or trainer.default_root_dir) / "skipped_files.txt"
        with atomic_open(out, "w", encoding="utf-8") as f:
            f.writelines(f"{path}\t{reason}\n" for path, reason in sorted(skipped.items()))
        what = getattr(dm, "SKIPPED", "inputs were left out")  # each data module says which
        rank_zero_warn(f"{len(skipped)} {what}; list in {out}")

    def on_fit_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._report(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:  # noqa: D102
        if not trainer.training and not trainer.sanity_checking:
            self._report(trainer)
