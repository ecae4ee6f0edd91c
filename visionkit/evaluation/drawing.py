"""Detections drawn on RGB uint8 images (one stable colour per class, labelled with name and score),
and images tiled into one captioned grid."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import cv2
import numpy as np


def class_colour(label: int) -> tuple[int, int, int]:
    """RGB colour of class ``label``: hues a golden-ratio step apart, the same in every run."""
    r, g, b = colorsys.hsv_to_rgb((label * 0.618033988749895) % 1.0, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(image: np.ndarray, boxes: np.ndarray, labels: Sequence[int],
                    scores: Sequence[float] | None, names: Sequence[str]) -> np.ndarray:
    """Copy of ``image`` with each xyxy box outlined and captioned ``"name 0.93"`` in its class colour.

    ``names[i]`` is the text for ``labels[i]`` (the caller maps labels to names); ``scores``
    None (ground truth) captions the name alone.
    """
    out = np.ascontiguousarray(image).copy()
    thickness = max(1, round(min(out.shape[:2]) / 300))
    scale = max(0.4, min(out.shape[:2]) / 900)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, (box, label, name) in enumerate(zip(boxes, labels, names)):
        colour = class_colour(int(label))
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
        text = name if scores is None else f"{name} {float(scores[i]):.2f}"
        (tw, th), base = cv2.getTextSize(text, font, scale, 1)
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1  # inside the box at the top edge
        left = max(0, min(x1, out.shape[1] - tw - 4))  # a label at the right edge shifts left
        cv2.rectangle(out, (left, top), (left + tw + 4, top + th + base + 2), colour, cv2.FILLED)
        cv2.putText(out, text, (left + 2, top + th + 1), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def image_grid(images: Sequence[np.ndarray], captions: Sequence[str] | None = None,
               cell: int = 256, columns: int | None = None) -> np.ndarray:
    """RGB uint8 ``[rows * cell, columns * cell, 3]``: each image scaled to fit its cell (aspect
    kept, grey margin), its caption (if any) on a dark strip at the top."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    grid = np.full((rows * cell, columns * cell, 3), 114, np.uint8)
    for i, image in enumerate(images):
        scale = cell / max(image.shape[:2])
        height, width = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        fitted = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)
        top, left = (i // columns) * cell, (i % columns) * cell
        grid[top:top + height, left:left + width] = fitted
        if captions is not None and captions[i]:
            _caption(grid, captions[i], left, top, cell)
    return grid


def _caption(grid: np.ndarray, text: str, left: int, top: int, cell: int) -> None:
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, cell / 600)
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    width = min(tw + 4, cell)
    grid[top:top + th + base + 4, left:left + width] = (30, 30, 30)
    cv2.putText(grid, text, (left + 2, top + th + 2), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
