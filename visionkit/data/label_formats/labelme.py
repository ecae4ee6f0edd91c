"""LabelMe JSON (one file per image, ``shapes`` of labelled points) → `LabelSet`.

Shapes: ``rectangle`` (two corners, any order), ``polygon`` (its extent; the outline is kept as
the COCO ``segmentation``) and ``circle`` (centre and a point on it). ``line``, ``linestrip``,
``point`` and other shapes have no box: skipped and named. A shape whose ``flags`` set
``crowd`` or ``iscrowd`` becomes ``iscrowd = 1``. ``imagePath`` is relative to the JSON file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from visionkit.data.images import image_size
from visionkit.data.label_formats.labels import LabeledImage, LabelSet, relative_name
from visionkit.errors import DatasetError, ImageReadError


def read_labelme(folder: str | os.PathLike, *, image_root: str | os.PathLike | None = None,
                 classes: list[str] | None = None) -> LabelSet:
    """Read every ``*.json`` under ``folder`` (recursive).

    Args:
        folder: folder of LabelMe JSON files.
        image_root: what the COCO ``file_name`` is relative to (default: ``folder``).
        classes: the class names in order; names outside it are skipped and named. Default:
            the names met, in sorted order.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder of LabelMe JSON files")
    files = sorted(folder.rglob("*.json"))
    if not files:
        raise DatasetError(f"{folder}: no .json files")
    root = Path(image_root) if image_root is not None else folder
    labels = LabelSet(list(classes or []), fixed_classes=classes is not None)
    for path in files:
        _read_file(path, root, labels)
    if classes is None:
        labels.classes.sort()
    return labels


def _read_file(path: Path, root: Path, labels: LabelSet) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        labels.issue(str(path), f"not readable JSON ({err})")
        return
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list) or not data.get("imagePath"):
        labels.issue(str(path), "not a LabelMe file (needs 'shapes' and 'imagePath')")
        return
    image_path = path.parent / data["imagePath"]
    try:
        width, height = image_size(image_path)
    except (ImageReadError, FileNotFoundError):
        labels.issue(str(path), f"image {image_path} is missing or unreadable")
        return
    stated = (data.get("imageWidth"), data.get("imageHeight"))
    if None not in stated and tuple(stated) != (width, height):
        labels.issue(str(path), f"imageWidth/imageHeight say {stated[0]}x{stated[1]} but the "
                                f"image is {width}x{height}", "used the image's size")
    image = LabeledImage(relative_name(image_path, root), width, height)
    for index, shape in enumerate(data["shapes"]):
        _add_shape(labels, image, f"{path} shape {index}", shape)
    labels.images.append(image)


def _add_shape(labels: LabelSet, image: LabeledImage, record: str, shape: Any) -> None:
    try:
        points = [(float(x), float(y)) for x, y in shape["points"]]
        name = str(shape["label"])
    except (KeyError, TypeError, ValueError):
        labels.issue(record, "needs 'label' and 'points' as [[x, y], ...]")
        return
    kind = shape.get("shape_type") or "polygon"
    polygon = None
    if kind == "rectangle" and len(points) == 2:
        (ax, ay), (bx, by) = points
        xyxy = (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))
    elif kind == "polygon" and len(points) >= 3:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        xyxy = (min(xs), min(ys), max(xs), max(ys))
        polygon = [v for point in points for v in point]
    elif kind == "circle" and len(points) == 2:
        (cx, cy), (px, py) = points
        radius = math.hypot(px - cx, py - cy)
        xyxy = (cx - radius, cy - radius, cx + radius, cy + radius)
    else:
        labels.issue(record, f"a {kind} of {len(points)} points has no box")
        return
    flags = shape.get("flags") or {}
    crowd = bool(flags.get("crowd") or flags.get("iscrowd")) if isinstance(flags, dict) else False
    labels.add_box(image, record, xyxy, name, iscrowd=int(crowd), polygon=polygon)
