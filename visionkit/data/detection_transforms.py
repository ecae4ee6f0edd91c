"""Bbox-aware albumentations pipelines for detection training; boxes follow every pixel change.

Images are RGB uint8 HWC, boxes ``xyxy`` pixels (albumentations' ``pascal_voc``). Boxes that a
crop leaves less than ``min_visibility`` of their area are dropped with their labels. The
resize/normalisation the detector needs is not here: it lives in the model's own transform, so
evaluation images go through no pipeline at all and keep their original coordinates.
"""

from __future__ import annotations

from typing import Any, Literal

import albumentations as A
import numpy as np

CROPS = ("none", "bbox_safe", "random_resized")


def detection_train_transform(
    *,
    hflip: float = 0.5,
    vflip: float = 0.0,
    transpose: float = 0.0,
    color_jitter: float = 0.2,
    crop: Literal["none", "bbox_safe", "random_resized"] = "none",
    crop_size: int = 512,
    crop_scale: tuple[float, float] = (0.3, 1.0),
    crop_prob: float = 0.5,
    max_size: int | None = None,
    min_visibility: float = 0.3,
    seed: int | None = None,
) -> A.Compose:
    """[LongestMaxSize] → [crop] → HorizontalFlip → [VerticalFlip] → [Transpose] → ColorJitter,
    with boxes kept consistent.

    vflip: probability of a vertical flip, for scenes without an up (microscopy, aerial and
    satellite photos, parts on a board); 0 (off) for photos of the world, where the sky is up.
    transpose: probability of swapping rows and columns (a mirror about the diagonal: landscape
    becomes portrait); with hflip and vflip at 0.5 each of the eight right-angle turns and
    mirrors of the image is equally likely. For the same scenes as vflip; a batch of landscape
    and portrait images is padded to their largest height and width, so with non-square images
    a step costs more (4:3 photos: up to 4/3).

    crop: "bbox_safe" (RandomSizedBBoxSafeCrop: every box stays), "random_resized"
    (RandomResizedCrop with ``crop_scale``; boxes may be cut or dropped) or "none"; both crops
    output ``crop_size`` squares and apply with probability ``crop_prob``. max_size: shrink
    larger images first (faster decoding-bound loading; the model resizes anyway).
    """
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    steps: list = []
    if max_size:
        steps.append(A.LongestMaxSize(max_size=max_size))
    if crop == "bbox_safe":
        steps.append(A.RandomSizedBBoxSafeCrop(height=crop_size, width=crop_size, p=crop_prob))
    elif crop == "random_resized":
        steps.append(A.RandomResizedCrop(size=(crop_size, crop_size), scale=tuple(crop_scale),
                                         p=crop_prob))
    if hflip > 0:
        steps.append(A.HorizontalFlip(p=hflip))
    if vflip > 0:
        steps.append(A.VerticalFlip(p=vflip))
    if transpose > 0:
        steps.append(A.Transpose(p=transpose))
    if color_jitter > 0:
        steps.append(A.ColorJitter(brightness=color_jitter, contrast=color_jitter,
                                   saturation=color_jitter, hue=0.0, p=0.8))
    bbox_params = A.BboxParams(format="pascal_voc", label_fields=["labels", "iscrowd", "proposal"],
                               min_visibility=min_visibility, clip=True, filter_invalid_bboxes=True)
    return A.Compose(steps, bbox_params=bbox_params, seed=seed)


def apply_detection_transform(transform: A.Compose, image: np.ndarray, target: dict[str, Any]
                              ) -> tuple[np.ndarray, dict[str, Any]]:
    """Run ``transform`` on an image and its target (boxes, labels, iscrowd; area recomputed).

    Region ``"proposals"`` in the target, if any, follow the image like the boxes (the ones a
    crop cuts away are dropped) and keep their order.
    """
    boxes = np.asarray(target["boxes"], np.float32).reshape(-1, 4)
    proposals = np.asarray(target.get("proposals", np.zeros((0, 4))), np.float32).reshape(-1, 4)
    pad = np.zeros(len(proposals), np.int64)
    out = transform(image=image, bboxes=np.concatenate([boxes, proposals]),
                    labels=np.r_[np.asarray(target["labels"], np.int64), pad],
                    iscrowd=np.r_[np.asarray(target["iscrowd"], np.int64), pad],
                    proposal=np.r_[np.zeros(len(boxes), np.int64), pad + 1])
    all_boxes = np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
    real = np.asarray(out["proposal"], np.int64) == 0
    boxes = all_boxes[real]
    result = {
        "boxes": boxes,
        "labels": np.asarray(out["labels"], np.int64)[real],
        "iscrowd": np.asarray(out["iscrowd"], np.int64)[real],
        "area": (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
    }
    if "proposals" in target:
        result["proposals"] = all_boxes[~real]
    return out["image"], result
