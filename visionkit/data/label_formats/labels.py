"""What every label-format reader produces: images with boxes by class name, and what it fixed.

A reader turns one format's files into a `LabelSet`: the images (file name relative to the image
root, size as `read_image` sees it) with their boxes (``xyxy`` pixels, class name, crowd flag),
the class names in order, and one `Issue` per record it skipped or fixed. `to_coco` writes the
set as a COCO instances dict with category ids ``1..K`` in class order.

Every box goes through `add_box`: a box partly outside its image is clipped to it (and named,
unless by less than `ROUNDING_PX`: the rounding of normalised coordinates),
one with no area inside the image is skipped (and named), a class outside ``classes`` is skipped
(and named) when the class list is fixed, else appended.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from visionkit.data.coco_detection import Issue
from visionkit.errors import DatasetError

ROUNDING_PX = 1e-3  # a box past the edge by less (normalised coordinates rounded) is clipped unnamed


@dataclass
class Box:
    """One object: ``xyxy`` pixels, class name, crowd flag and (LabelMe polygons) its outline."""

    xyxy: tuple[float, float, float, float]
    name: str
    iscrowd: int = 0
    polygon: list[float] | None = None  # x1, y1, x2, y2, ... pixels


@dataclass
class LabeledImage:
    """An image (``file_name`` relative to the image root, its size) and its boxes."""

    file_name: str
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)


@dataclass
class LabelSet:
    """Images and class names read from one label format, and every record skipped or fixed.

    Args:
        classes: class names in order (category ids ``1..K``).
        fixed_classes: True when ``classes`` came from the user (a name outside it is skipped);
            False when it grows with each new name met.
    """

    classes: list[str] = field(default_factory=list)
    fixed_classes: bool = False
    images: list[LabeledImage] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def issue(self, record: str, problem: str, action: str = "skipped") -> None:
        """Note one record skipped or fixed."""
        self.issues.append(Issue(record, problem, action))

    def add_box(self, image: LabeledImage, record: str, xyxy: Sequence[float], name: str,
                iscrowd: int = 0, polygon: list[float] | None = None) -> None:
        """Add a box to ``image`` after the class, finiteness and clipping checks."""
        if name not in self.classes:
            if self.fixed_classes:
                self.issue(record, f"unknown class {name!r} (not in the class list)")
                return
            self.classes.append(name)
        if not all(math.isfinite(v) for v in xyxy):
            self.issue(record, f"box {list(xyxy)} is not four finite numbers")
            return
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        if x2 <= x1 or y2 <= y1:
            self.issue(record, f"box {[x1, y1, x2, y2]} has no area (xyxy)")
            return
        clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(image.width)), min(y2, float(image.height)))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            self.issue(record, f"box {[x1, y1, x2, y2]} lies outside the {image.width}x"
                               f"{image.height} image")
            return
        if max(abs(a - b) for a, b in zip(clipped, (x1, y1, x2, y2), strict=True)) > ROUNDING_PX:
            self.issue(record, f"box {[x1, y1, x2, y2]} reaches outside the {image.width}x"
                               f"{image.height} image", f"clipped to {[round(v, 3) for v in clipped]}")
        image.boxes.append(Box(clipped, name, int(iscrowd), polygon))

    @property
    def num_boxes(self) -> int:
        """Boxes over all images."""
        return sum(len(image.boxes) for image in self.images)


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (blank lines ignored); duplicates are an error."""
    path = Path(path)
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the class list ({err.strerror})") from None
    names = [n for n in names if n]
    if not names:
        raise DatasetError(f"{path}: no class names (one per line)")
    seen: set[str] = set()
    for number, name in enumerate(names, 1):
        if name in seen:
            raise DatasetError(f"{path}: class {name!r} is listed twice (name {number})")
        seen.add(name)
    return names


def read_split_ids(path: str | os.PathLike) -> list[str]:
    """Image stems of a VOC split file (``ImageSets/Main/*.txt``: the first word of each line;
    per-class files add a ``1``/``-1``/``0`` flag after it)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the split ({err.strerror})") from None
    ids = [line.split()[0] for line in lines if line.strip()]
    if not ids:
        raise DatasetError(f"{path}: no image ids (one per line)")
    return list(dict.fromkeys(ids))  # in order, once each


def relative_name(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """``path`` relative to ``root`` with ``/`` separators (a COCO ``file_name``)."""
    return Path(os.path.relpath(path, root)).as_posix()


def to_coco(labels: LabelSet) -> dict:
    """The COCO instances dict: images and annotations numbered from 1, categories ``1..K``."""
    category = {name: i for i, name in enumerate(labels.classes, 1)}
    images, annotations = [], []
    for image_id, image in enumerate(labels.images, 1):
        images.append({"id": image_id, "file_name": image.file_name, "width": image.width,
                       "height": image.height})
        for box in image.boxes:
            x1, y1, x2, y2 = box.xyxy
            width, height = x2 - x1, y2 - y1
            annotation = {"id": len(annotations) + 1, "image_id": image_id,
                          "category_id": category[box.name], "bbox": [x1, y1, width, height],
                          "area": width * height, "iscrowd": box.iscrowd}
            if box.polygon is not None:
                annotation["segmentation"] = [box.polygon]
            annotations.append(annotation)
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": name} for name, i in category.items()]}
