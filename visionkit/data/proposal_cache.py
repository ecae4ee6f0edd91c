"""Region proposals cached on disk per image and generator settings, computed once per dataset.

Layout: ``<root>/<method>-<settings digest>/settings.json`` and one ``<image id>-<path digest>.npy``
(float32 ``[N, 4]`` xyxy in the original image's pixels) per image. The key holds the image id
and a digest of its resolved path (relative and absolute image roots share entries), so two
datasets sharing a cache root never read each other's boxes; other settings get another folder.
Files are written atomically; one that cannot be read is recomputed (and rewritten) rather than
trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Protocol

import numpy as np
from torch.utils.data import DataLoader, Dataset

from visionkit.data.coco_detection import CocoDetection, ImageRecord
from visionkit.data.images import read_image
from visionkit.data.workers import worker_start_method
from visionkit.fileio import atomic_open, write_json
from visionkit.progress import progress_bar


class Generator(Protocol):
    """A proposal generator with the settings that define its output (`SelectiveSearch`)."""

    settings: dict

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


def _digest(text: str, length: int = 10) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


class ProposalCache:
    """``cache(record, image)`` returns the proposals of one dataset image, from disk when there."""

    def __init__(self, root: str | os.PathLike, generator: Generator) -> None:
        self.generator = generator
        settings = {"method": type(generator).__name__, **generator.settings}
        key = json.dumps(settings, sort_keys=True)
        self.folder = Path(root) / f"{type(generator).__name__.lower()}-{_digest(key)}"
        self.settings = settings

    def path(self, record: ImageRecord) -> Path:
        """Where the proposals of ``record`` are stored."""
        return self.folder / f"{record.image_id}-{_digest(str(record.path.resolve()))}.npy"

    def load(self, record: ImageRecord) -> np.ndarray | None:
        """The cached proposals of ``record``, or None when absent or unreadable."""
        path = self.path(record)
        try:
            boxes = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        return boxes if boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4 else None

    def __call__(self, record: ImageRecord, image: np.ndarray | None = None) -> np.ndarray:
        """Cached proposals of ``record``; computed from ``image`` (read when None) and saved if new."""
        boxes = self.load(record)
        if boxes is not None:
            return boxes
        boxes = np.asarray(self.generator(read_image(record.path) if image is None else image), np.float32)
        if not (self.folder / "settings.json").is_file():
            write_json(self.folder / "settings.json", self.settings)
        with atomic_open(self.path(record), "wb") as f:
            np.save(f, boxes, allow_pickle=False)
        return boxes


class _Precompute(Dataset):
    def __init__(self, records: list[ImageRecord], cache: ProposalCache) -> None:
        self.records = records
        self.cache = cache

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> int:
        return len(self.cache(self.records[index]))


def precompute_proposals(dataset: CocoDetection, cache: ProposalCache, num_workers: int = 0,
                         progress: bool = True, shard: tuple[int, int] = (0, 1)) -> dict[str, float]:
    """Fill ``cache`` for the images of ``dataset`` (progress bar); counts of what was done.

    Args:
        dataset: the images (its records).
        cache: where the proposals go.
        num_workers: DataLoader workers computing them.
        progress: show a progress bar (on a terminal).
        shard: ``(index, count)``: only every ``count``-th image from the ``index``-th, so that
            ``count`` processes (DDP ranks) sharing the cache folder fill it together.
    """
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard}")
    mine = dataset.records[index::count]
    missing = [r for r in mine if cache.load(r) is None]
    counts = []
    loader = DataLoader(_Precompute(missing, cache), batch_size=None, num_workers=num_workers,
                        multiprocessing_context=worker_start_method(num_workers))
    bar = progress_bar(loader, total=len(missing), desc="proposals", unit="img",
                       enabled=progress and bool(missing))
    for count in bar:
        counts.append(int(count))
    return {"images": len(mine), "computed": len(missing), "cached_before": len(mine) - len(missing),
            "mean_proposals_computed": float(np.mean(counts)) if counts else 0.0}
