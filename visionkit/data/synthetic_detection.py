"""Deterministic synthetic detection set: shapes on noisy backgrounds, written as COCO JSON + PNGs.

Each image holds 1..``max_objects`` non-overlapping shapes (10% hold none: negatives) of random
kind (among ``classes``), size, rotation and colour; boxes are the exact pixel extent of each
drawn shape. Category ids are the shapes' positions in `visionkit.data.synthetic.SHAPES` plus
one, so a subset of classes gives non-contiguous ids. The same arguments write byte-identical
files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from visionkit.data.synthetic import SHAPES, draw_shape
from visionkit.fileio import atomic_write_with, write_json


def _shape_box(kind: str, size: int, cx: float, cy: float, r: float, angle: float) -> list[float]:
    """COCO ``[x, y, w, h]`` of the pixels a shape covers."""
    mask = np.zeros((size, size, 3), np.uint8)
    draw_shape(mask, kind, cx, cy, r, angle, (255, 255, 255))
    ys, xs = np.nonzero(mask[..., 0])
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def shapes_scene(classes: Sequence[str], size: int, max_objects: int, rng: np.random.Generator,
                 radius: tuple[float, float] = (0.07, 0.18), empty_fraction: float = 0.1
                 ) -> tuple[np.ndarray, list[tuple[str, list]]]:
    """One RGB uint8 image and its ``(kind, [x, y, w, h])`` objects (none in ~empty_fraction)."""
    bg = rng.integers(0, 256, 3)
    image = np.clip(bg + rng.normal(0, 18, (size, size, 3)), 0, 255).astype(np.uint8)
    placed: list[tuple[float, float, float]] = []
    objects = []
    count = 0 if rng.random() < empty_fraction else int(rng.integers(1, max_objects + 1))
    for _ in range(count):
        r = rng.uniform(*radius) * size
        for _attempt in range(20):  # rejection sampling: no two shapes touch
            cx, cy = rng.uniform(r + 1, size - r - 1, 2)
            if all(np.hypot(cx - x, cy - y) > r + q + 2 for x, y, q in placed):
                break
        else:
            continue
        kind = classes[int(rng.integers(len(classes)))]
        angle = rng.uniform(0, 2 * np.pi)
        color = tuple(int(c) for c in (bg + rng.integers(80, 176, 3)) % 256)
        draw_shape(image, kind, cx, cy, r, angle, color)
        placed.append((cx, cy, r))
        objects.append((kind, _shape_box(kind, size, cx, cy, r, angle)))
    return image, objects


def make_shapes_detection(root: str | os.PathLike, classes: Sequence[str] = SHAPES[:3],
                          n_train: int = 200, n_val: int = 50, size: int = 256,
                          max_objects: int = 4, seed: int = 0) -> Path:
    """Write ``root/images/{train,val}/NNNN.png`` and ``root/{train,val}.json``; return ``root``.

    ``file_name`` in the JSON is relative to ``root`` (the image root).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    categories = [{"id": SHAPES.index(k) + 1, "name": k, "supercategory": "shape"} for k in classes]
    ann_id, image_id = 1, 1
    for split, count in (("train", n_train), ("val", n_val)):
        images, annotations = [], []
        for i in range(count):
            image, objects = shapes_scene(classes, size, max_objects, rng)
            file_name = f"images/{split}/{i:04d}.png"
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            atomic_write_with(root / file_name, lambda tmp, img=bgr: cv2.imwrite(tmp, img))
            images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
            for kind, bbox in objects:
                annotations.append({"id": ann_id, "image_id": image_id, "bbox": bbox,
                                    "category_id": SHAPES.index(kind) + 1,
                                    "area": float(bbox[2] * bbox[3]), "iscrowd": 0})
                ann_id += 1
            image_id += 1
        write_json(root / f"{split}.json", {"images": images, "annotations": annotations,
                                            "categories": categories}, indent=None)
    return root
