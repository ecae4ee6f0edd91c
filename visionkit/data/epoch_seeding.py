"""Training randomness as a pure function of (seed, epoch, sample), so a resumed run repeats exactly.

`EpochSeededSampler` yields ``(index, epoch)`` keys in an order drawn from (seed, epoch) alone;
`EpochSeeded` reseeds the augmentation pipeline from (seed, epoch, index) before each sample.
Neither depends on how many workers there are or on what ran before, so epoch e of a run
resumed from a checkpoint sees the same batches and augmentations as epoch e of an
uninterrupted run. `seed_for_epoch` does the same for the main process (dropout, MixUp).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def derived_seed(*keys: int) -> int:
    """A well-mixed 32-bit seed from integer keys (NumPy's SeedSequence)."""
    return int(np.random.SeedSequence([k % 2**63 for k in keys]).generate_state(1)[0])


def seed_for_epoch(seed: int, epoch: int) -> int:
    """Seed torch, NumPy and `random` in this process from (seed, epoch); returns the seed used."""
    value = derived_seed(seed, epoch, 2**31)
    torch.manual_seed(value)
    np.random.seed(value)
    random.seed(value)
    return value


class EpochSeededSampler(Sampler):
    """``(index, epoch)`` for every index, shuffled by (seed, epoch) when ``shuffle``.

    The epoch is ``epoch_fn()`` when given (e.g. the trainer's current epoch, read when
    iteration starts), else the value of the last `set_epoch` call.
    """

    def __init__(self, size: int, seed: int, shuffle: bool = True,
                 epoch_fn: Callable[[], int] | None = None) -> None:
        self.size, self.seed, self.shuffle, self.epoch_fn = size, seed, shuffle, epoch_fn
        self.epoch = 0
        self.drawn_for: int | None = None  # epoch of the order drawn last

    def set_epoch(self, epoch: int) -> None:
        """Epoch to draw the next order for (when no ``epoch_fn`` is given)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch_fn() if self.epoch_fn is not None else self.epoch
        self.drawn_for = epoch
        if self.shuffle:
            generator = torch.Generator().manual_seed(derived_seed(self.seed, epoch))
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = range(self.size)
        return iter([(i, epoch) for i in order])


class EpochSeeded(Dataset):
    """``dataset[index]`` for a key ``(index, epoch)``, with ``pipeline`` reseeded from
    (seed, epoch, index) first (``pipeline``: anything with ``set_random_seed``, e.g. an
    albumentations Compose the dataset applies)."""

    def __init__(self, dataset: Any, pipeline: Any, seed: int) -> None:
        self.dataset, self.pipeline, self.seed = dataset, pipeline, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, epoch = key
        self.pipeline.set_random_seed(derived_seed(self.seed, epoch, index))
        return self.dataset[index]


def epoch_seeded(dataset: Any, pipeline: Any, epoch_fn: Callable[[], int]
                 ) -> tuple[EpochSeeded, EpochSeededSampler]:
    """``dataset`` as an `EpochSeeded` training set with its `EpochSeededSampler`, both seeded
    from torch's seed (the run's `seed_everything`)."""
    seed = torch.initial_seed()
    return (EpochSeeded(dataset, pipeline, seed),
            EpochSeededSampler(len(dataset), seed, epoch_fn=epoch_fn))
