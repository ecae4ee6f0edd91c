"""LightningDataModule over COCO instances JSON files and one image root, for detectors."""

from __future__ import annotations

from functools import partial
from typing import Literal

import albumentations as A
import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from visionkit.data.coco_detection import CocoDetection, collate_detection, read_categories
from visionkit.data.detection_transforms import apply_detection_transform, detection_train_transform
from visionkit.data.epoch_seeding import epoch_seeded
from visionkit.data.proposal_cache import Generator, ProposalCache, precompute_proposals
from visionkit.data.workers import worker_start_method


class DetectionDataModule(L.LightningDataModule):
    """Train/val(/test) COCO files; labels ``1..K`` follow the training file's categories.

    Args:
        train_json, val_json: COCO instances files; test_json: for ``test`` (default val_json).
        image_root: folder the files' ``file_name`` entries are relative to.
        on_invalid: "warn" (drop or clip invalid records per the `CocoDetection` policy, list
            them in the run's ``skipped_files.txt``) or "error" (stop naming them).
        hflip, vflip, transpose, color_jitter, crop, crop_size, crop_scale, crop_prob, max_size: training
            augmentation (`visionkit.data.detection_transforms.detection_train_transform`).
            Validation and test images are not transformed: the model resizes them itself and
            boxes stay in the original pixels.
        proposal_cache: folder of the region-proposal cache used when the detector takes
            proposals (R-CNN, Fast R-CNN): `use_proposals` fills it before training, so epochs
            read boxes from disk. Proposals follow the training augmentation; the "bbox_safe"
            crop keeps every proposal too, so it hardly crops: use hflip or "random_resized".
        proposal_workers: processes computing missing proposals (0: this process).
    """

    # What the run's skipped_files.txt lists (`SkippedFilesReport`).
    SKIPPED = "invalid records or images were dropped or clipped (--data.on_invalid warn)"

    def __init__(
        self,
        train_json: str,
        val_json: str,
        image_root: str,
        test_json: str | None = None,
        batch_size: int = 4,
        num_workers: int = 2,
        on_invalid: Literal["warn", "error"] = "warn",
        hflip: float = 0.5,
        vflip: float = 0.0,
        transpose: float = 0.0,
        color_jitter: float = 0.2,
        crop: Literal["none", "bbox_safe", "random_resized"] = "none",
        crop_size: int = 512,
        crop_scale: tuple[float, float] = (0.3, 1.0),
        crop_prob: float = 0.5,
        max_size: int | None = None,
        proposal_cache: str = "runs/proposals",
        proposal_workers: int = 2,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.categories = read_categories(train_json)
        self.train_set: CocoDetection | None = None
        self.val_set: CocoDetection | None = None
        self.test_set: CocoDetection | None = None
        self.epoch = 0  # without a Trainer: the epoch `set_epoch` names
        self.train_pipeline: A.Compose | None = None
        self.skipped: list[tuple[str, str]] = []
        self.proposals: ProposalCache | None = None

    @property
    def classes(self) -> list[str]:
        """Class names of labels 1..K (categories by increasing id)."""
        return [self.categories[c] for c in self.category_ids]

    @property
    def category_ids(self) -> list[int]:
        """COCO category id of each label 1..K."""
        return sorted(self.categories)

    @property
    def num_classes(self) -> int:
        """Detector classes: K categories + background."""
        return len(self.categories) + 1

    def _dataset(self, path: str, train: bool) -> CocoDetection:
        hp = self.hparams
        transform = None
        if train:
            self.train_pipeline = detection_train_transform(
                hflip=hp.hflip, vflip=hp.vflip, transpose=hp.transpose, color_jitter=hp.color_jitter,
                crop=hp.crop, crop_size=hp.crop_size, crop_scale=tuple(hp.crop_scale),
                crop_prob=hp.crop_prob, max_size=hp.max_size, seed=torch.initial_seed() % 2**32)
            transform = partial(apply_detection_transform, self.train_pipeline)
        dataset = CocoDetection(path, hp.image_root, transform, on_invalid=hp.on_invalid,
                                categories=self.categories, proposals=self.proposals)
        self.skipped += [(f"{path}: {issue.record}", f"{issue.problem} -> {issue.action}")
                         for issue in dataset.issues]
        return dataset

    def setup(self, stage: str | None = None) -> None:
        """Read the JSON files needed by ``stage`` (validating every record)."""
        hp = self.hparams
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._dataset(hp.train_json, train=True)
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._dataset(hp.val_json, train=False)
        if stage in (None, "test") and self.test_set is None:
            self.test_set = self._dataset(hp.test_json or hp.val_json, train=False)

    def use_proposals(self, generator: Generator, shard: tuple[int, int] = (0, 1)) -> dict[str, int]:
        """Give every item region proposals from ``generator``, cached; compute the missing ones
        of ``shard`` (``(rank, world size)``: each DDP rank its share) now. Returns the counts
        of this shard's images: ``{"images", "computed"}``."""
        self.proposals = ProposalCache(self.hparams.proposal_cache, generator)
        total = {"images": 0, "computed": 0}
        for dataset in (self.train_set, self.val_set, self.test_set):
            if dataset is not None:
                dataset.proposals = self.proposals
                counts = precompute_proposals(dataset, self.proposals, self.hparams.proposal_workers,
                                              shard=shard)
                total = {key: total[key] + int(counts[key]) for key in total}
        return total

    def _loader(self, dataset: Dataset, sampler: Sampler | None = None) -> DataLoader:
        # its own generator: starting an epoch's iterator must not draw from the global RNG
        return DataLoader(dataset, generator=torch.Generator().manual_seed(0),
                          batch_size=self.hparams.batch_size, sampler=sampler,
                          num_workers=self.hparams.num_workers, collate_fn=collate_detection,
                          persistent_workers=self.hparams.num_workers > 0,
                          multiprocessing_context=worker_start_method(self.hparams.num_workers),
                          pin_memory=torch.cuda.is_available())

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next train iterator draws its order and augmentation for, when no
        Lightning `Trainer` runs the module (a plain loop calls this before each epoch)."""
        self.epoch = epoch

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else self.epoch

    def train_dataloader(self) -> DataLoader:
        """Shuffled per epoch, augmented per sample, both from (seed, epoch) alone: resumes exactly."""
        return self._loader(*epoch_seeded(self.train_set, self.train_pipeline, self._epoch))

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader(self.test_set)

