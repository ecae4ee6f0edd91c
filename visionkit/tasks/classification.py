"""ClassificationTask: Lightning training of a visionkit image classifier with transfer strategies."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from visionkit.checkpoint_record import CheckpointRecord, write_record
from visionkit.data.mixup import MixupCutmix
from visionkit.errors import ConfigError
from visionkit.evaluation.confusion import ConfusionMatrix, plot_confusion_matrix
from visionkit.models import create_classifier, parameter_groups, set_group_trainable
from visionkit.models.transfer import trainable_deepest
from visionkit.tasks.callbacks import EpochSeeding, GradualUnfreezing, SkippedFilesReport
from visionkit.tasks.ema import EMAHooks, TaskEMA
from visionkit.tasks.nonfinite import NonFiniteGuard
from visionkit.tasks.optim import build_optimizer, build_scheduler
from visionkit.tasks.pictures import TrainingPictures

STRATEGIES = ("finetune", "linear_probe", "gradual")
MAX_PER_CLASS_LOGGED = 20


class ClassificationTask(L.LightningModule):
    """Fine-tune `backbone` on `num_classes` classes.

    Args:
        backbone: a name from `visionkit.models.list_backbones()`.
        num_classes: number of classes; filled from the data module's class folders.
        pretrained: None (random init), "imagenet" or a weights/checkpoint path (see
            `create_classifier`).
        head: "linear", or "mlp" (one hidden layer of ``hidden_features``).
        dropout: dropout before the head's last layer.
        hidden_features: width of the "mlp" head's hidden layer.
        strategy: "finetune" (all layers), "linear_probe" (backbone frozen, BatchNorm in eval),
            or "gradual" (head first, then one more layer group every `unfreeze_every` epochs).
        unfreeze_every: epochs between thawing layer groups (strategy "gradual").
        optimizer: "sgd", "adam", "adamw" or "rmsprop"; weight decay skips biases and norms.
        lr: learning rate of the head (the peak one with warmup or "onecycle").
        momentum: SGD/RMSprop momentum.
        nesterov: Nesterov momentum (SGD).
        weight_decay: L2 penalty (decoupled for AdamW).
        group_lr_decay: LR multiplier per layer group below the head (discriminative LRs);
            group at depth d from the top trains at lr × group_lr_decay**d.
        scheduler: "none", "step" (× gamma every step_epochs), "cosine" (with warmup_epochs of
            linear warmup) or "onecycle".
        warmup_epochs: epochs (fractions allowed) of linear warmup before "cosine".
        step_epochs: epochs between LR drops ("step").
        gamma: LR factor at each drop ("step").
        label_smoothing: cross-entropy label smoothing (0 = off).
        mixup_alpha: batch MixUp Beta(alpha, alpha) (0 = off).
        cutmix_alpha: batch CutMix Beta(alpha, alpha) (0 = off).
        mix_prob: share of batches mixed when MixUp or CutMix is on.
        switch_prob: share of mixed batches that use CutMix when both are on.
        early_stopping_patience: stop after this many epochs without a better val_acc (null: off).
        class_names: class names in label order; filled from the data module, saved in checkpoints.
        image_size: input side; filled from ``data.image_size``, saved in checkpoints.
        max_nonfinite_steps: steps with a non-finite loss are skipped (and reported with their
            files); this many in a row stop the run after saving ``last_finite.ckpt``.
        compile: compile the model with ``torch.compile`` when a Trainer starts (in place: the
            state dict keeps its keys). ResNet-18 at 224 px, batch 16, 2 CPU cores: 0.97x the
            step time after ~26 s of compiling (`visionkit benchmark train-step --compile`); off
            by default, as short runs do not earn the compile time back.
        ema_decay: keep an exponential moving average of the weights with this decay (e.g.
            0.999; null: off), updated after each optimizer step, used for validation and
            testing and saved as the checkpoints' weights (`visionkit.tasks.ema`).
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        num_classes: int = 2,
        pretrained: str | None = None,
        head: Literal["linear", "mlp"] = "linear",
        dropout: float = 0.0,
        hidden_features: int = 512,
        strategy: Literal["finetune", "linear_probe", "gradual"] = "finetune",
        unfreeze_every: int = 1,
        optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 1e-4,
        group_lr_decay: float = 1.0,
        scheduler: Literal["none", "step", "cosine", "onecycle"] = "cosine",
        warmup_epochs: float = 0.0,
        step_epochs: int = 30,
        gamma: float = 0.1,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mix_prob: float = 1.0,
        switch_prob: float = 0.5,
        early_stopping_patience: int | None = None,
        class_names: list[str] | None = None,
        image_size: int = 224,
        max_nonfinite_steps: int = 3,
        compile: bool = False,
        ema_decay: float | None = None,
    ) -> None:
        super().__init__()
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(f"num_classes={num_classes} but {len(class_names)} class names")
        self.save_hyperparameters()
        self.nonfinite = NonFiniteGuard(max_nonfinite_steps)
        self.model = create_classifier(backbone, num_classes, pretrained=pretrained, head=head,
                                       dropout=dropout, hidden_features=hidden_features)
        if strategy == "linear_probe":
            groups = self.model.layer_groups()
            set_group_trainable(groups, trainable_deepest(groups, 1))
        self.ema = TaskEMA(self.model, ema_decay) if ema_decay is not None else None
        self.compiled = False
        self.mixer: MixupCutmix | None = None
        self.val_confusion = ConfusionMatrix(num_classes)
        self.val_loss_sum = [0.0, 0]  # summed cross-entropy, images: reduced at epoch end
        self.last_confusion: torch.Tensor | None = None

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) the backbone expects."""
        return self.model.backbone.mean, self.model.backbone.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of normalised images."""
        return self.model(images)

    def configure_model(self) -> None:
        """Compile the model in place when ``compile`` is set (once; Lightning calls this before
        fit, validate, test and predict)."""
        if self.hparams.compile and not self.compiled:
            self.model.compile()
            self.compiled = True

    def setup(self, stage: str) -> None:
        """Seed the batch mixer from torch's seed, so seeded runs repeat."""
        hp = self.hparams
        self.mixer = MixupCutmix(hp.num_classes, hp.mixup_alpha, hp.cutmix_alpha, hp.mix_prob,
                                 hp.switch_prob, hp.label_smoothing,
                                 seed=torch.initial_seed() % 2**32)

    def on_train_epoch_start(self) -> None:
        """Reseed the batch mixer from the epoch's seed (set by `EpochSeeding` just before)."""
        if self.mixer is not None:
            self.mixer.rng = np.random.default_rng(torch.initial_seed())

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        """Cross-entropy on (mixed) soft targets or smoothed hard labels (None: step skipped)."""
        images, labels = batch["image"], batch["label"]
        if images is None:  # every file of the batch was skipped
            return None
        self.nonfinite.before_forward(self)
        if self.mixer is not None and self.mixer.active:
            images, targets = self.mixer(images, labels)
            loss = F.cross_entropy(self(images), targets)
            if not self.nonfinite.usable(self, loss, batch["path"]):
                return None
        else:
            logits = self(images)
            loss = F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing)
            if not self.nonfinite.usable(self, loss, batch["path"]):
                return None
            self.log("train_acc", (logits.argmax(1) == labels).float().mean(), on_step=False,
                     on_epoch=True, batch_size=len(labels))
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True,
                 batch_size=len(labels))
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True,
                 batch_size=len(labels))
        return loss

    def _eval_step(self, batch: dict, prefix: str) -> None:
        if batch["image"] is None:
            return
        logits = self(batch["image"])
        self.val_loss_sum[0] += float(F.cross_entropy(logits, batch["label"], reduction="sum"))
        self.val_loss_sum[1] += len(batch["label"])
        self.val_confusion.update(logits, batch["label"])

    def validation_step(self, batch: dict, batch_idx: int) -> None:  # noqa: D102
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:  # noqa: D102
        self._eval_step(batch, "test")

    def on_validation_epoch_start(self) -> None:  # noqa: D102
        self.val_confusion.reset()
        self.val_loss_sum = [0.0, 0]

    on_test_epoch_start = on_validation_epoch_start

    def batch_pictures(self, batch: dict) -> tuple[list[np.ndarray], list[str]]:
        """A training batch as RGB uint8 images (de-normalised) and their class names."""
        if batch["image"] is None:
            return [], []
        datamodule = getattr(self.trainer, "datamodule", None)  # its --data.mean/std, if set
        normalization = (datamodule.normalization() if hasattr(datamodule, "normalization")
                         else self.normalization())
        mean, std = (torch.tensor(v, device=batch["image"].device)[:, None, None]
                     for v in normalization)
        images = (batch["image"].detach().float() * std + mean).clamp(0, 1)  # [B, 3, H, W]
        pixels = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        names = self.hparams.class_names or [str(i) for i in range(self.hparams.num_classes)]
        return list(pixels), [names[int(label)] for label in batch["label"]]

    def _log_confusion(self, prefix: str) -> None:
        state = self.val_confusion.state_tensor().to(self.device)
        self.val_confusion.load_state_tensor(self.trainer.strategy.reduce(state, reduce_op="sum"))
        # summed over ranks, not averaged per rank: exact when ranks hold different image counts
        loss_sum, count = self.trainer.strategy.reduce(
            torch.tensor(self.val_loss_sum, dtype=torch.float32, device=self.device),
            reduce_op="sum").tolist()
        if self.trainer.sanity_checking:
            return
        if count:
            self.log(f"{prefix}_loss", loss_sum / count, prog_bar=True)
        metrics = self.val_confusion.compute()  # every rank holds the summed counts: same values
        if not metrics:
            return
        self.log(f"{prefix}_acc", metrics["acc"], prog_bar=True)
        for key in ("top5",):
            if key in metrics:
                self.log(f"{prefix}_{key}", metrics[key])
        names = self.hparams.class_names or [str(i) for i in range(self.hparams.num_classes)]
        if len(names) <= MAX_PER_CLASS_LOGGED:
            for name, acc in zip(names, metrics["per_class_acc"]):
                if acc == acc:  # not NaN: the class occurred
                    self.log(f"{prefix}_acc/{name}", acc)
        self.last_confusion = self.val_confusion.matrix.clone()
        log_dir = self.trainer.log_dir  # a broadcast under DDP: every rank must ask
        if self.trainer.is_global_zero and log_dir:
            plot_confusion_matrix(self.last_confusion, names,
                                  Path(log_dir) / f"{prefix}_confusion_matrix.png",
                                  title=f"{prefix} confusion, epoch {self.current_epoch}")

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        self._log_confusion("val")

    def on_test_epoch_end(self) -> None:  # noqa: D102
        self._log_confusion("test")

    def configure_optimizers(self):  # noqa: D102
        hp = self.hparams
        groups = parameter_groups(self.model.layer_groups(), hp.lr, hp.weight_decay,
                                  hp.group_lr_decay)
        optimizer = build_optimizer(groups, hp.optimizer, hp.lr, hp.momentum, hp.nesterov)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        scheduler = build_scheduler(optimizer, hp.scheduler, total_steps=total,
                                    steps_per_epoch=per_epoch, warmup_epochs=hp.warmup_epochs,
                                    step_epochs=hp.step_epochs, gamma=hp.gamma)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def configure_callbacks(self) -> list[L.Callback]:
        """Best/last checkpoints on val_acc, skipped-file report, pictures, early stopping,
        strategy callbacks, and the EMA's hooks when it is on."""
        callbacks: list[L.Callback] = [
            # best.ckpt: weights and record (a third of the size with SGD momentum); last.ckpt
            # keeps the optimizer state to resume from.
            ModelCheckpoint(monitor="val_acc", mode="max", filename="best", save_weights_only=True,
                            enable_version_counter=False),
            # Lightning 2.6 writes save_last only in epochs that improved the best, so the
            # latest state gets a checkpoint of its own, named so that ckpt_path="last" finds it.
            ModelCheckpoint(monitor=None, filename="last", enable_version_counter=False),
            SkippedFilesReport(),
            EpochSeeding(),
            TrainingPictures(),
        ]
        if self.hparams.early_stopping_patience:
            callbacks.append(EarlyStopping(monitor="val_acc", mode="max",
                                           patience=self.hparams.early_stopping_patience))
        if self.hparams.strategy == "gradual":
            callbacks.append(GradualUnfreezing(self.hparams.unfreeze_every))
        if self.ema is not None:
            callbacks.append(EMAHooks())
        return callbacks

    def checkpoint_record(self) -> CheckpointRecord:
        """What inference needs beside the weights: model arguments, classes, preprocessing."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        mean, std = self.normalization()
        return CheckpointRecord(
            task="classification",
            model=dict(self.model.config),
            classes=list(self.hparams.class_names or []),
            image_size=int(self.hparams.image_size),
            crop_fraction=float(getattr(dm, "crop_fraction", 0.875)),
            mean=list(mean),
            std=list(std),
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store `checkpoint_record` beside the weights (the EMA's, when it is on)."""
        write_record(checkpoint, self.checkpoint_record())
        if self.ema is not None:
            self.ema.save(checkpoint, self.model)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """With EMA on: the average into the EMA, the trained weights into the model."""
        if self.ema is not None:
            self.ema.load(checkpoint)
