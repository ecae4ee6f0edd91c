"""Deterministic synthetic image sets written to disk, for demos, tests and benchmarks.

Shapes of random colour, size, position and rotation on a noisy background; the same seed
writes byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

SHAPES = ("circle", "square", "triangle", "cross", "star", "hexagon", "diamond", "ring")


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Vertices of a regular shape of circumradius r centred at (cx, cy)."""
    if kind == "square":
        n, radii = 4, [r]
    elif kind == "diamond":
        n, radii = 4, [r, 0.55 * r]
    elif kind == "triangle":
        n, radii = 3, [r]
    elif kind == "hexagon":
        n, radii = 6, [r]
    elif kind == "star":
        n, radii = 10, [r, 0.45 * r]
    else:
        raise ValueError(kind)
    t = angle + np.arange(n) * 2 * np.pi / n
    rr = np.array([radii[i % len(radii)] for i in range(n)])
    return np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], 1).round().astype(np.int32)


def draw_shape(image: np.ndarray, kind: str, cx: float, cy: float, r: float, angle: float,
               color: tuple[int, int, int]) -> None:
    """Draw one filled shape in place on an RGB uint8 image."""
    if kind == "circle":
        cv2.circle(image, (int(cx), int(cy)), int(r), color, -1, cv2.LINE_AA)
    elif kind == "ring":
        cv2.circle(image, (int(cx), int(cy)), int(r), color, max(2, int(r * 0.3)), cv2.LINE_AA)
    elif kind == "cross":
        w = max(2, int(r * 0.35))
        for a in (angle, angle + np.pi / 2):
            dx, dy = r * np.cos(a), r * np.sin(a)
            cv2.line(image, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), color, w,
                     cv2.LINE_AA)
    else:
        cv2.fillPoly(image, [_polygon(kind, cx, cy, r, angle)], color, cv2.LINE_AA)


def shape_image(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One RGB uint8 image of `kind` on a noisy background."""
    bg = rng.integers(0, 256, 3)
    image = np.clip(bg + rng.normal(0, 18, (size, size, 3)), 0, 255).astype(np.uint8)
    fg = (bg + rng.integers(80, 176, 3)) % 256  # far from the background in every channel
    r = rng.uniform(0.2, 0.4) * size
    cx, cy = rng.uniform(r, size - r, 2)
    draw_shape(image, kind, cx, cy, r, rng.uniform(0, 2 * np.pi), tuple(int(c) for c in fg))
    return image


def make_shapes_classification(root: str | os.PathLike, classes: Sequence[str] = SHAPES[:3],
                               n_train: int = 40, n_val: int = 20, size: int = 64,
                               seed: int = 0) -> Path:
    """Write `root/{train,val}/<class>/NNNN.png` and return `root`."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for kind in classes:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rgb = shape_image(kind, size, rng)
                cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return root
