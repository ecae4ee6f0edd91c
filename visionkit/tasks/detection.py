"""DetectionTask: Lightning training of a visionkit detector (Faster R-CNN, Fast R-CNN, R-CNN), COCO mAP."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from visionkit.checkpoint_record import CheckpointRecord, write_record
from visionkit.detection import classification_layers, create_detector
from visionkit.detection.builders import require_known
from visionkit.detection.options import (
    SECTIONS,
    FasterRCNNOptions,
    FastRCNNOptions,
    RCNNOptions,
    options_dict,
    section,
    section_options,
)
from visionkit.distributed import gather_objects
from visionkit.errors import ConfigError
from visionkit.evaluation import DetectionEvaluator
from visionkit.evaluation.drawing import draw_detections
from visionkit.models import scaled_parameter_groups
from visionkit.tasks.callbacks import EpochSeeding, SkippedFilesReport
from visionkit.tasks.ema import EMAHooks, TaskEMA
from visionkit.tasks.nonfinite import NonFiniteGuard
from visionkit.tasks.optim import build_optimizer, build_scheduler
from visionkit.tasks.pictures import TrainingPictures

METRICS = {"map": "AP", "map50": "AP50", "map75": "AP75"}


def warmup_multistep(warmup_steps: int, milestones: Sequence[int], gamma: float,
                     warmup_factor: float = 0.001) -> Callable[[int], float]:
    """LR factor per step: linear warmup from ``warmup_factor``, then × gamma at each milestone."""

    def factor(step: int) -> float:
        warm = 1.0 if step >= warmup_steps else warmup_factor + (1 - warmup_factor) * step / warmup_steps
        return warm * gamma ** bisect_right(list(milestones), step)

    return factor


class DetectionTask(L.LightningModule):
    """Train detector ``name`` (see `visionkit.detection.list_detectors`) on COCO-format data.

    Args:
        name: the detector (`visionkit.detection.list_detectors()`).
        num_classes: K categories + 1 (background); filled from the data module.
        pretrained: the whole detector's weights: "coco" (torchvision's, where they exist) or a
            checkpoint path; null for none.
        pretrained_backbone: the backbone's classification weights: "imagenet" or a path; null
            for random init.
        faster_rcnn: options of the Faster R-CNN family (`FasterRCNNOptions`); only the section
            of ``name``'s family may differ from its defaults.
        fast_rcnn: options of the Fast R-CNN family (`FastRCNNOptions`).
        rcnn: options of the R-CNN family (`RCNNOptions`).
        optimizer: "sgd" (momentum) or "adamw"; weight decay skips biases and norm layers.
        lr: peak learning rate (after warmup).
        backbone_lr_scale: the LR of the layers ``pretrained_backbone`` loads (the backbone body;
            an R-CNN's CNN) is ``lr`` times this; FPN, RPN and heads train at ``lr``.
        momentum: SGD momentum.
        weight_decay: L2 penalty (decoupled for AdamW).
        scheduler: "step" (× gamma at each epoch in ``step_epochs``), "cosine" or "none"; "step"
            and "cosine" start with ``warmup_epochs`` of linear warmup.
        warmup_epochs: epochs (fractions allowed) of linear warmup.
        step_epochs: epochs at which "step" multiplies the LR by ``gamma`` (null: no drop).
        gamma: LR factor at each step.
        class_names: names of labels 1..K; filled from the data module, saved in checkpoints.
        category_ids: COCO category ids of labels 1..K; filled from the data module; mAP is
            reported and results written per original id.
        eval_backend: "fast" (exact, pycocotools' numbers) or "pycocotools".
        max_nonfinite_steps: steps with a non-finite loss are skipped (and reported with their
            image ids); this many in a row stop the run after saving ``last_finite.ckpt``.
        ema_decay: keep an exponential moving average of the weights with this decay (e.g.
            0.999; null: off), updated after each optimizer step, used for validation and
            testing and saved as the checkpoints' weights (`visionkit.tasks.ema`).
    """

    def __init__(
        self,
        name: str = "fasterrcnn_resnet18_fpn",
        num_classes: int = 2,
        pretrained: str | None = None,
        pretrained_backbone: str | None = None,
        faster_rcnn: FasterRCNNOptions = FasterRCNNOptions(),  # noqa: B008 (dataclass: listed by --help)
        fast_rcnn: FastRCNNOptions = FastRCNNOptions(),  # noqa: B008
        rcnn: RCNNOptions = RCNNOptions(),  # noqa: B008
        optimizer: Literal["sgd", "adamw"] = "sgd",
        lr: float = 0.01,
        backbone_lr_scale: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        scheduler: Literal["none", "step", "cosine"] = "step",
        warmup_epochs: float = 1.0,
        step_epochs: list[int] | None = None,
        gamma: float = 0.1,
        class_names: list[str] | None = None,
        category_ids: list[int] | None = None,
        eval_backend: Literal["fast", "pycocotools"] = "fast",
        max_nonfinite_steps: int = 3,
        ema_decay: float | None = None,
    ) -> None:
        super().__init__()
        given = {"faster_rcnn": faster_rcnn, "fast_rcnn": fast_rcnn, "rcnn": rcnn}
        self.save_hyperparameters(ignore=list(given))
        require_known(name)
        if not backbone_lr_scale > 0:
            raise ConfigError(f"model.backbone_lr_scale must be above 0, got {backbone_lr_scale} "
                              f"(freeze layers with the family's trainable_backbone_layers, e.g. "
                              f"--model.faster_rcnn.trainable_backbone_layers)")
        chosen = section(name)
        for key, value in given.items():  # plain dicts in hparams (checkpoints load weights-only)
            given[key] = section_options(key, value)
            if key != chosen and given[key] != SECTIONS[key]():
                raise ConfigError(f"model.{key} is set but {name} takes model.{chosen} options")
            # the other families saved as null: a checkpoint must not pin their defaults (a later
            # default would make `--ckpt_path` read them as set, and refuse the checkpoint)
            self.hparams[key] = options_dict(given[key]) if key == chosen else None
        self.nonfinite = NonFiniteGuard(max_nonfinite_steps)
        self.image_hw: list[int] | None = None  # most common training image size (on_fit_start)
        self.model = create_detector(name, num_classes, pretrained=pretrained,
                                     pretrained_backbone=pretrained_backbone, options=given[chosen])
        self.ema = TaskEMA(self.model, ema_decay) if ema_decay is not None else None
        labels = range(1, num_classes)
        ids = list(category_ids) if category_ids else list(labels)
        names = list(class_names) if class_names else [str(i) for i in ids]
        self.evaluator = DetectionEvaluator(dict(zip(labels, ids, strict=True)),
                                            dict(zip(ids, names, strict=True)), backend=eval_backend)

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Detections of 0–1 float images (eval mode)."""
        return self.model(images)

    def setup(self, stage: str) -> None:
        """A detector that takes proposals gets them from the data module (cached on disk).

        Under DDP each rank computes its share of the missing ones, then all wait for each other:
        with the cache folder on a shared disk every image's proposals are computed once (on
        separate disks, a rank computes the rest as it reads them).
        """
        generator = getattr(self.model, "proposal_generator", None)
        datamodule = getattr(self.trainer, "datamodule", None)
        if generator is None or not hasattr(datamodule, "use_proposals"):
            return
        trainer = self.trainer
        counts = datamodule.use_proposals(generator, shard=(trainer.global_rank, trainer.world_size))
        every_rank = gather_objects(counts)  # waits for every rank's share
        images, computed = (sum(part[key] for part in every_rank) for key in ("images", "computed"))
        rank_zero_info(f"proposals: {computed} of {images} images computed, the rest read from "
                       f"{datamodule.proposals.folder}")

    @staticmethod
    def _proposals(targets: list[dict]) -> dict[str, list[torch.Tensor]]:
        """``proposals=`` keyword for the model when the targets carry them, else nothing."""
        if targets and "proposals" in targets[0]:
            return {"proposals": [t["proposals"] for t in targets]}
        return {}

    def training_step(self, batch: tuple[list, list], batch_idx: int) -> torch.Tensor | None:
        """Sum of the detector's losses (None: a non-finite loss, step skipped)."""
        images, targets = batch
        self.nonfinite.before_forward(self)
        losses = self.model(images, targets, **self._proposals(targets))
        loss = sum(losses.values())
        if not self.nonfinite.usable(self, loss, [int(t["image_id"]) for t in targets]):
            return None
        size = len(images)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        for key, value in losses.items():
            self.log(f"train_{key}", value, on_step=False, on_epoch=True, batch_size=size)
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True,
                 batch_size=size)
        return loss

    def _eval_step(self, batch: tuple[list, list]) -> None:
        images, targets = batch
        self.evaluator.update(self.model(images, **self._proposals(targets)), targets)

    def validation_step(self, batch: tuple[list, list], batch_idx: int) -> None:  # noqa: D102
        self._eval_step(batch)

    def test_step(self, batch: tuple[list, list], batch_idx: int) -> None:  # noqa: D102
        self._eval_step(batch)

    def on_validation_epoch_start(self) -> None:  # noqa: D102
        self.evaluator.reset()

    on_test_epoch_start = on_validation_epoch_start

    def batch_pictures(self, batch: tuple[list, list]) -> tuple[list[np.ndarray], list[str]]:
        """A training batch as RGB uint8 images with their boxes and class names drawn in."""
        names = list(self.hparams.class_names or [])
        pictures, captions = [], []
        for image, target in zip(*batch, strict=True):
            pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
            labels = [int(label) for label in target["labels"]]
            pictures.append(draw_detections(
                pixels.permute(1, 2, 0).cpu().numpy(), target["boxes"].detach().cpu().numpy(),
                labels, None, [names[label - 1] if label <= len(names) else str(label)
                               for label in labels]))
            captions.append(f"image id {int(target['image_id'])}")
        return pictures, captions

    def _log_map(self, prefix: str) -> None:
        if self.trainer.sanity_checking:
            return
        stats = self.evaluator.compute().stats
        for key, stat in METRICS.items():
            value = stats[stat]
            self.log(f"{prefix}_{key}", value if value >= 0 else math.nan, prog_bar=key == "map")

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        self._log_map("val")

    def on_test_epoch_end(self) -> None:  # noqa: D102
        self._log_map("test")

    def optimizer_groups(self) -> list[dict]:
        """The optimizer's parameter groups: ``lr`` (the pretrained layers' times
        ``backbone_lr_scale``), no weight decay on biases and norms."""
        hp = self.hparams
        return scaled_parameter_groups(self.model, classification_layers(self.model), hp.lr,
                                       hp.weight_decay, hp.backbone_lr_scale)

    def configure_optimizers(self):  # noqa: D102
        hp = self.hparams
        optimizer = build_optimizer(self.optimizer_groups(), hp.optimizer, hp.lr, hp.momentum)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        warmup = int(round(hp.warmup_epochs * per_epoch))
        if hp.scheduler == "step":
            milestones = [e * per_epoch for e in (hp.step_epochs or [])]
            factor = warmup_multistep(warmup, milestones, hp.gamma)
            scheduler = {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor),
                         "interval": "step"}
        else:
            scheduler = build_scheduler(optimizer, hp.scheduler, total_steps=total,
                                        steps_per_epoch=per_epoch, warmup_epochs=hp.warmup_epochs)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def configure_callbacks(self) -> list[L.Callback]:
        """Best (val_map) and last checkpoints, the report of invalid records left out, epoch
        seeding, pictures, and the EMA's hooks when it is on."""
        callbacks: list[L.Callback] = [
            # best.ckpt: weights and record (a third of the size with SGD momentum); last.ckpt
            # keeps the optimizer state to resume from.
            ModelCheckpoint(monitor="val_map", mode="max", filename="best", save_weights_only=True,
                            enable_version_counter=False),
            # Lightning 2.6 writes save_last only in improving epochs: a checkpoint of its own.
            ModelCheckpoint(monitor=None, filename="last", enable_version_counter=False),
            SkippedFilesReport(),
            EpochSeeding(),
            TrainingPictures(),
        ]
        return [*callbacks, EMAHooks()] if self.ema is not None else callbacks

    def checkpoint_record(self) -> CheckpointRecord:
        """What inference needs: the model's builder arguments, classes and category ids."""
        hp = self.hparams
        return CheckpointRecord(task="detection", model=dict(self.model.config),
                                classes=list(hp.class_names or []),
                                category_ids=list(hp.category_ids or range(1, hp.num_classes)),
                                image_hw=self.image_hw)

    def on_fit_start(self) -> None:
        """Note the training images' most common (height, width) for the checkpoint record."""
        train_set = getattr(getattr(self.trainer, "datamodule", None), "train_set", None)
        sizes = Counter((r.height, r.width) for r in getattr(train_set, "records", []))
        if sizes:
            self.image_hw = list(sizes.most_common(1)[0][0])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store `checkpoint_record` beside the weights (the EMA's, when it is on)."""
        write_record(checkpoint, self.checkpoint_record())
        if self.ema is not None:
            self.ema.save(checkpoint, self.model)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """With EMA on: the average into the EMA, the trained weights into the model."""
        if self.ema is not None:
            self.ema.load(checkpoint)
