"""LightningDataModule over an image folder: `root/{train,val}/<class>/` or one seeded split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, Sampler

from visionkit.checkpoint_record import CheckpointRecord
from visionkit.data.epoch_seeding import epoch_seeded
from visionkit.data.image_folder import (
    DECODE_CHECK_MAX,
    FolderIndex,
    ImageFolderDataset,
    collate_classification,
    scan_image_folder,
    stratified_split,
)
from visionkit.data.transforms import classification_eval_transform, classification_train_transform
from visionkit.data.workers import worker_start_method
from visionkit.errors import DatasetError
from visionkit.models.backbone import IMAGENET_MEAN, IMAGENET_STD


def _require_two_classes(index: FolderIndex) -> None:
    """A classifier needs two classes or more: one class folder is a mistake, not a dataset."""
    if len(index.classes) > 1:
        return
    left_out = f" ({', '.join(p for p, _ in index.skipped)} left out: no images)" if index.skipped else ""
    raise DatasetError(f"{index.root}: only one class folder, {index.classes[0]!r}{left_out}; a "
                       f"classifier needs two or more: add a folder of images per class")


class ImageFolderDataModule(L.LightningDataModule):
    """Classification data from an image folder, with albumentations pipelines.

    Args:
        root: folder holding `train/` and `val/` class folders, or class folders directly (then
            split per class with `val_fraction` and `split_seed`).
        image_size: square side fed to the model.
        batch_size: images per batch (per process under DDP).
        num_workers: image-decoding processes.
        val_fraction: share of each class held out for validation when ``root`` has no split.
        split_seed: seed of that split.
        train_dir: name of the training folder below ``root``.
        val_dir: name of the validation folder below ``root``.
        skip_invalid: leave out unreadable files and empty class folders, listing them in
            `skipped_files.txt` of the run, instead of stopping with an error.
        crop_scale: area range of the training RandomResizedCrop.
        hflip: probability of a horizontal flip in training.
        color_jitter: strength of the training colour jitter (0 = off).
        crop_fraction: evaluation resizes the short side to image_size / crop_fraction and
            centre-crops image_size.
        mean: per-channel normalisation mean; null: the model's backbone's (ImageNet's if
            unknown), which is what its pretrained weights expect.
        std: per-channel normalisation std; null: the backbone's, as for ``mean``.
        bootstrap_seed: train on a bootstrap resample of the training split (as many images,
            drawn with replacement by this seed; null: the split itself), for bagging
            (`visionkit classify bag`). Saved with the data module's arguments in checkpoints.
    """

    # What the run's skipped_files.txt lists (`SkippedFilesReport`).
    SKIPPED = "unreadable files or empty class folders were left out (--data.skip_invalid)"

    def __init__(
        self,
        root: str,
        image_size: int = 224,
        batch_size: int = 32,
        num_workers: int = 2,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        train_dir: str = "train",
        val_dir: str = "val",
        skip_invalid: bool = False,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        hflip: float = 0.5,
        color_jitter: float = 0.4,
        crop_fraction: float = 0.875,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        bootstrap_seed: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.root = root
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.skip_invalid = skip_invalid
        self.crop_fraction = crop_fraction
        self.mean, self.std = mean, std
        classes_scan = scan_image_folder(self._train_root(), skip_invalid=skip_invalid, verify=False)
        _require_two_classes(classes_scan)
        self.classes: list[str] = classes_scan.classes
        self._empty_classes = classes_scan.skipped  # class folders left out (skip_invalid)
        self.skipped: list[tuple[str, str]] = list(self._empty_classes)
        self.train_set: ImageFolderDataset | None = None
        self.val_set: ImageFolderDataset | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes found in the training folder."""
        return len(self.classes)

    def _has_split_dirs(self) -> bool:
        return (Path(self.root) / self.hparams.train_dir).is_dir() and (
            Path(self.root) / self.hparams.val_dir).is_dir()

    def _train_root(self) -> str:
        return str(Path(self.root) / self.hparams.train_dir) if self._has_split_dirs() else self.root

    def normalization(self) -> tuple[Sequence[float], Sequence[float]]:
        """(mean, std): explicit ones, else the attached model's backbone's, else ImageNet's."""
        if self.mean is not None and self.std is not None:
            return self.mean, self.std
        model = getattr(getattr(self, "trainer", None), "lightning_module", None)
        if model is not None and hasattr(model, "normalization"):
            return model.normalization()
        return IMAGENET_MEAN, IMAGENET_STD

    def use_preprocessing_of(self, record: CheckpointRecord) -> list[str]:
        """Evaluate as ``record``'s model was trained: its input size, crop and normalisation.

        Returns what changed (``"image_size 160 -> 128"``), for the caller to say.
        """
        changed = []
        for name in ("image_size", "crop_fraction", "mean", "std"):
            value, current = getattr(record, name), getattr(self, name)
            if value is None:
                continue
            if isinstance(value, list | tuple):
                value = [float(v) for v in value]
                current = None if current is None else [float(v) for v in current]
            if current is not None and current != value:
                changed.append(f"{name} {current} -> {value}")
            setattr(self, name, value)
        return changed

    def setup(self, stage: str | None = None) -> None:
        """Scan and verify the files, split if needed, and build the datasets."""
        train_index = scan_image_folder(self._train_root(), self.classes,
                                        skip_invalid=self.skip_invalid)
        skipped = [*self._empty_classes, *train_index.skipped]
        if self._has_split_dirs():
            val_index = scan_image_folder(Path(self.root) / self.hparams.val_dir, self.classes,
                                          skip_invalid=self.skip_invalid)
            skipped += val_index.skipped
            train_samples, val_samples = train_index.samples, val_index.samples
            decoded = train_index.decoded and val_index.decoded
        else:
            train_samples, val_samples = stratified_split(
                train_index.samples, self.hparams.val_fraction, self.hparams.split_seed)
            decoded = train_index.decoded
        if not decoded:
            rank_zero_info(f"{len(train_samples) + len(val_samples)} images: headers checked (over "
                           f"{DECODE_CHECK_MAX} in a folder); a file that does not decode is found "
                           f"when it is read")
        if self.hparams.bootstrap_seed is not None:  # same size, drawn with replacement
            draw = np.random.default_rng(self.hparams.bootstrap_seed).integers(
                0, len(train_samples), len(train_samples))
            train_samples = [train_samples[i] for i in draw]
        self.skipped = skipped
        mean, std = self.normalization()
        train_tf = classification_train_transform(
            self.image_size, mean, std, scale=tuple(self.hparams.crop_scale),
            hflip=self.hparams.hflip, color_jitter=self.hparams.color_jitter)
        eval_tf = classification_eval_transform(self.image_size, mean, std,
                                                crop_fraction=self.crop_fraction)
        # Training decodes large JPEGs at reduced scale (the short side stays ≥ 2× the crop's
        # side); validation decodes them whole, as `classify predict` and `visionkit.load` do, so
        # a checkpoint predicts the accuracy its run logged.
        self.train_set = ImageFolderDataset(train_samples, self.classes, train_tf,
                                            self.skip_invalid, 2 * self.image_size)
        self.val_set = ImageFolderDataset(val_samples, self.classes, eval_tf, self.skip_invalid)

    def _loader(self, dataset: Dataset, sampler: Sampler | None = None) -> DataLoader:
        # its own generator: starting an epoch's iterator must not draw from the global RNG
        return DataLoader(dataset, generator=torch.Generator().manual_seed(0),
                          batch_size=self.batch_size, sampler=sampler,
                          num_workers=self.num_workers, collate_fn=collate_classification,
                          persistent_workers=self.num_workers > 0,
                          multiprocessing_context=worker_start_method(self.num_workers),
                          pin_memory=torch.cuda.is_available(), drop_last=False)

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        """Shuffled per epoch, augmented per sample, both from (seed, epoch) alone: resumes exactly."""
        return self._loader(*epoch_seeded(self.train_set, self.train_set.transform, self._epoch))

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        """Under DDP each rank evaluates its share, no image twice: Lightning's default sampler
        pads the last share with repeats, which the summed confusion matrix would count."""
        trainer = self.trainer
        world = trainer.world_size if trainer is not None else 1
        if world > 1 and len(dataset) >= world:  # every rank gets a batch (else: pad as usual)
            return self._loader(dataset, UnrepeatedDistributedSampler(
                dataset, num_replicas=world, rank=trainer.global_rank, shuffle=False))
        return self._loader(dataset)

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._eval_loader(self.val_set)
