"""Heatmaps drawn over RGB uint8 images, annotation marks, side-by-side panels, PNG writing."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from visionkit.fileio import atomic_open


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a 0..1 heatmap `[H, W]` (jet colours) over the grey version of an RGB uint8 image,
    so that every hue in the result is the heatmap's."""
    heat = np.clip(np.asarray(heatmap, dtype=np.float32) * 255.0, 0, 255).astype(np.uint8)
    colours = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    blend = (1 - alpha) * grey.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(blend.round(), 0, 255).astype(np.uint8)


def mark(image: np.ndarray, box: Sequence[float] | None = None,
         point: Sequence[float] | None = None) -> np.ndarray:
    """Copy of `image` with an `xyxy` box (green) and an (x, y) point (white cross) drawn on it."""
    out = image.copy()
    if box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), (0, 255, 0), 1)
    if point is not None:
        cv2.drawMarker(out, (int(point[0]), int(point[1])), (255, 255, 255), cv2.MARKER_CROSS,
                       max(5, image.shape[0] // 12), 2)
    return out


def caption(image: np.ndarray, text: str) -> np.ndarray:
    """`image` with a black strip below it holding `text`, scaled down to fit the width."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    width = cv2.getTextSize(text, font, 1.0, 1)[0][0]
    scale = max(0.3, min(0.6, (image.shape[1] - 8) / max(width, 1)))
    (_, height), base = cv2.getTextSize("Ag", font, scale, 1)
    strip = np.zeros((height + base + 8, image.shape[1], 3), np.uint8)
    cv2.putText(strip, text, (4, height + 4), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([image, strip], 0)


def enlarge(image: np.ndarray, min_side: int) -> np.ndarray:
    """`image` scaled up by a whole factor (pixels repeated) until its short side is ≥ min_side."""
    factor = -(-min_side // min(image.shape[:2]))
    return image if factor <= 1 else np.repeat(np.repeat(image, factor, 0), factor, 1)


def grid(images: Sequence[np.ndarray], columns: int, gap: int = 4) -> np.ndarray:
    """RGB images tiled row by row on a white background, each in a cell of the largest size."""
    h = max(img.shape[0] for img in images)
    w = max(img.shape[1] for img in images)
    rows = -(-len(images) // columns)
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + img.shape[0], c * (w + gap):c * (w + gap) + img.shape[1]] = img
    return out


def write_png(path: str | os.PathLike, image: np.ndarray, colours: int | None = None) -> Path:
    """Write an RGB uint8 image as PNG atomically; `colours` (≤ 256) makes a smaller palette PNG."""
    picture = Image.fromarray(image)
    if colours:
        picture = picture.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=bool(colours))
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
    return Path(path)
