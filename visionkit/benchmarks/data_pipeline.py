"""`data` benchmark: our classification training pipeline through a DataLoader vs torchvision's v2.

Ours: `ImageFolderDataset` (PIL decoding with EXIF orientation; large JPEGs decoded at reduced
scale, short side at least twice the crop, as the data module does) + the albumentations
`classification_train_transform` (RandomResizedCrop, HorizontalFlip, ColorJitter p=0.8,
Normalize). Reference: torchvision's ImageFolder loading (PIL, RGB) + ``transforms.v2`` with the
same steps and parameters. Same files, batch size, workers and image size; each round runs one epoch of each,
alternating which goes first; reported: median images per second and the ratio of ours to
torchvision's (above 1: ours is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

DEFAULT_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hymenoptera" / "train"


class TorchvisionFolder(Dataset):
    """The same (path, label) samples loaded as torchvision's ImageFolder does (PIL, RGB)."""

    def __init__(self, samples: list, transform) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        return {"image": self.transform(rgb), "label": label, "path": str(path)}


def torchvision_pipeline(size: int, mean, std, color_jitter: float = 0.4):
    """transforms.v2 twin of `classification_train_transform`'s defaults."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.ToImage(),
        v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
        v2.RandomHorizontalFlip(0.5),
        v2.RandomApply([v2.ColorJitter(color_jitter, color_jitter, color_jitter, 0.0)], p=0.8),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def epoch_seconds(loader: DataLoader) -> float:
    """Seconds to iterate ``loader`` once."""
    started = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - started


def run(argv: list[str]) -> dict:
    """Time both pipelines; return the JSON dict."""
    parser = argparse.ArgumentParser(prog="visionkit benchmark data", description=__doc__)
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="image folder root/<class>/*.jpg")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each")
    args = parser.parse_args(argv)

    from visionkit.data.image_folder import ImageFolderDataset, collate_classification, scan_image_folder
    from visionkit.data.transforms import classification_train_transform
    from visionkit.models.backbone import IMAGENET_MEAN, IMAGENET_STD

    index = scan_image_folder(args.root)
    ours = ImageFolderDataset(index.samples, index.classes,
                              classification_train_transform(args.size, IMAGENET_MEAN, IMAGENET_STD, seed=0),
                              decode_min_side=2 * args.size)  # as the data module decodes
    theirs = TorchvisionFolder(index.samples, torchvision_pipeline(args.size, IMAGENET_MEAN, IMAGENET_STD))
    loaders = {name: DataLoader(ds, batch_size=args.batch_size, num_workers=args.num_workers,
                                collate_fn=collate_classification, persistent_workers=args.num_workers > 0)
               for name, ds in (("ours", ours), ("torchvision", theirs))}
    shapes = {name: tuple(next(iter(loader))["image"].shape[1:]) for name, loader in loaders.items()}
    seconds: dict[str, list[float]] = {name: [] for name in loaders}
    for round_ in range(args.rounds):
        order = list(loaders) if round_ % 2 == 0 else list(loaders)[::-1]
        for name in order:
            seconds[name].append(epoch_seconds(loaders[name]))
    rate = {name: len(index.samples) / statistics.median(s) for name, s in seconds.items()}
    return {
        "benchmark": "data", "root": args.root, "images": len(index.samples), "size": args.size,
        "batch_size": args.batch_size, "num_workers": args.num_workers, "rounds": args.rounds,
        "output_shape": {k: list(v) for k, v in shapes.items()},
        "images_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ratio": round(rate["ours"] / rate["torchvision"], 3),
    }
