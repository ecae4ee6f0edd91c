"""Image folders (`root/<class>/**/*.jpg`): scanning with validation, splitting, and a Dataset.

Class names are the sorted sub-folder names. Images in nested folders belong to their top
class folder (`root/cat/2019/a.jpg` is a "cat"); folders and files whose names start with "." are
left out. Symlinked files and folders are followed, each real folder is visited once (a symlink
loop ends there). Files without an image extension are listed in `FolderIndex.ignored`.

Files are checked while indexed: decoded (at reduced scale) when the folder holds at most
`DECODE_CHECK_MAX` images, so a truncated JPEG stops the run before the model is built; in larger
folders only headers are checked and a file that fails to decode is found when it is read.
Invalid content — an unreadable file, a class folder without images — raises
`DatasetError`/`ImageReadError` naming it, or with `skip_invalid=True` is left out and listed in
`FolderIndex.skipped` (never dropped silently).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from visionkit.data.images import check_image_file, is_image_file, read_image
from visionkit.errors import DatasetError, ImageReadError

Sample = tuple[str, int]


@dataclass
class FolderIndex:
    """What a scan found: class names, (path, label) samples, and what was left out and why."""

    root: Path
    classes: list[str]
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: list[str] = field(default_factory=list)  # files without an image extension
    decoded: bool = False  # every image decoded while indexing, not only its header read


def _walk_files(folder: Path) -> list[Path]:
    """All files under `folder`, sorted; symlinks are followed, each real folder visited once.

    A link back to `folder` or one of its parents is a loop and is not followed.
    """
    found = []
    real_root = Path(os.path.realpath(folder))
    seen = {str(real_root), *map(str, real_root.parents)}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        kept = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            real = os.path.realpath(os.path.join(dirpath, name))
            if real not in seen:
                seen.add(real)
                kept.append(name)
        dirnames[:] = kept
        found += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    return sorted(found)


MAX_LISTED = 5  # unreadable files named in the error (the count says how many in all)
# Folders of up to this many images are decoded while indexing (~1 s per 1000 small photos at
# 1/8 scale); larger ones have their headers checked only.
DECODE_CHECK_MAX = 2000


def scan_image_folder(root: str | os.PathLike, classes: Sequence[str] | None = None, *,
                      skip_invalid: bool = False, verify: bool = True) -> FolderIndex:
    """Index `root/<class>/...`; `classes` fixes the class list (e.g. a val root uses train's)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: image folder not found")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is not None:
        extra = sorted(name for name in set(found) - set(classes)
                       if any(is_image_file(f) for f in _walk_files(root / name)))
        if extra:
            raise DatasetError(f"{root}: class folders {extra} are not among the training "
                               f"classes {list(classes)}")
    index = FolderIndex(root, list(classes) if classes is not None else [], [])
    labelled: list[tuple[Path, int]] = []
    for name in (classes if classes is not None else found):
        files = _walk_files(root / name) if (root / name).is_dir() else []
        images = [f for f in files if is_image_file(f)]
        index.ignored += [str(f) for f in files if not is_image_file(f)]
        if not images and classes is None:
            reason = "class folder has no image files"
            if not skip_invalid:
                raise DatasetError(f"{root / name}: {reason} (remove it, add images, or pass "
                                   f"skip_invalid=True to leave it out)")
            index.skipped.append((str(root / name), reason))
            continue
        label = len(index.classes) if classes is None else list(classes).index(name)
        if classes is None:
            index.classes.append(name)
        labelled += [(path, label) for path in images]
    index.decoded = verify and len(labelled) <= DECODE_CHECK_MAX
    unreadable: list[str] = []  # without skip_invalid: all of them in one error at the end
    for path, label in labelled:
        if verify:
            try:
                check_image_file(path, decode=index.decoded)
            except ImageReadError as err:
                if not skip_invalid:
                    unreadable.append(str(err))
                index.skipped.append((str(path), str(err)))
                continue
        index.samples.append((str(path), label))
    if unreadable:
        listed = "; ".join(unreadable[:MAX_LISTED])
        more = f"; ... and {len(unreadable) - MAX_LISTED} more" if len(unreadable) > MAX_LISTED else ""
        raise ImageReadError(f"{root}: {len(unreadable)} unreadable image files: {listed}{more} "
                             f"(fix or remove them, or pass skip_invalid=True to leave them out)")
    if not index.classes:
        raise DatasetError(f"{root}: no class folders with images (expected root/<class>/*.jpg)")
    if not index.samples:
        raise DatasetError(f"{root}: no readable images")
    return index


def stratified_split(samples: Sequence[Sample], val_fraction: float, seed: int
                     ) -> tuple[list[Sample], list[Sample]]:
    """Split per class with a seeded shuffle: the same seed gives the same split."""
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in sorted({lab for _, lab in samples}):
        members = [s for s in samples if s[1] == label]
        order = rng.permutation(len(members))
        n_val = min(len(members) - 1, max(1, round(len(members) * val_fraction)))
        val += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return train, val


class ImageFolderDataset(Dataset):
    """(path, label) samples → dicts `{"image": tensor, "label": int, "path": str}`.

    `transform` is an albumentations pipeline (called as `transform(image=array)`); wrap the
    dataset in `visionkit.data.epoch_seeding.EpochSeeded` for augmentations seeded per sample and
    epoch (what the training data modules do). `decode_min_side` lets large JPEGs decode
    at a reduced scale that keeps both sides at least that long. With `skip_invalid`, a file that fails to
    decode yields `{"skipped": path, "reason": ...}`, which `collate_classification` reports.
    """

    def __init__(self, samples: Sequence[Sample], classes: Sequence[str],
                 transform: Callable | None = None, skip_invalid: bool = False,
                 decode_min_side: int | None = None) -> None:
        self.samples = list(samples)
        self.decode_min_side = decode_min_side
        self.classes = list(classes)
        self.transform = transform
        self.skip_invalid = skip_invalid

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        path, label = self.samples[i]
        try:
            image = read_image(path, self.decode_min_side)
        except ImageReadError as err:
            if not self.skip_invalid:
                raise
            return {"skipped": path, "reason": str(err)}
        if self.transform is not None:
            image = self.transform(image=image)["image"]
        return {"image": image, "label": label, "path": path}


def collate_classification(items: list[dict]) -> dict:
    """Stack images and labels; files skipped while reading travel along in `"skipped"`."""
    good = [it for it in items if "image" in it]
    batch = {
        "image": torch.stack([torch.as_tensor(it["image"]) for it in good]) if good else None,
        "label": torch.tensor([it["label"] for it in good], dtype=torch.long),
        "path": [it["path"] for it in good],
        "skipped": [(it["skipped"], it["reason"]) for it in items if "skipped" in it],
    }
    return batch
