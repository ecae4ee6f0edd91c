"""Albumentations pipelines for classification: random-resized-crop training, resize-crop eval.

Input: RGB uint8 HWC arrays. Output: normalised float CHW tensors (the backbone's mean/std).
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2


def classification_train_transform(
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    hflip: float = 0.5,
    color_jitter: float = 0.4,
    seed: int | None = None,
) -> A.Compose:
    """RandomResizedCrop → HorizontalFlip → ColorJitter → Normalize → tensor."""
    steps: list = [A.RandomResizedCrop(size=(size, size), scale=tuple(scale))]
    if hflip > 0:
        steps.append(A.HorizontalFlip(p=hflip))
    if color_jitter > 0:
        steps.append(A.ColorJitter(brightness=color_jitter, contrast=color_jitter,
                                   saturation=color_jitter, hue=0.0, p=0.8))
    steps += [A.Normalize(mean=tuple(mean), std=tuple(std)), ToTensorV2()]
    return A.Compose(steps, seed=seed)


def eval_resize_side(size: int, crop_fraction: float) -> int:
    """Short side an evaluation image is resized to before its centre ``size`` crop."""
    return int(round(size / crop_fraction))


def classification_eval_steps(size: int, mean: Sequence[float], std: Sequence[float], *,
                              crop_fraction: float = 0.875) -> list[str]:
    """`classification_eval_transform` in words, for files that leave visionkit (exports)."""
    side = eval_resize_side(size, crop_fraction)
    return [f"RGB uint8 image: resize so the short side is {side} px (bilinear, OpenCV INTER_LINEAR, "
            f"other side rounded)", f"centre-crop {size}x{size}",
            f"float: (pixel / 255 - mean) / std, mean {list(mean)}, std {list(std)}",
            "HWC -> CHW, batch first"]


def classification_eval_transform(size: int, mean: Sequence[float], std: Sequence[float], *,
                                  crop_fraction: float = 0.875) -> A.Compose:
    """Resize the short side to size/crop_fraction → CenterCrop → Normalize → tensor
    (`classification_eval_steps` says the same in words)."""
    return A.Compose([
        A.SmallestMaxSize(max_size=eval_resize_side(size, crop_fraction),
                          interpolation=cv2.INTER_LINEAR),
        A.CenterCrop(height=size, width=size),
        A.Normalize(mean=tuple(mean), std=tuple(std)),
        ToTensorV2(),
    ])
