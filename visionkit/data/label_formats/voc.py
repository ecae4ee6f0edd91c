"""Pascal VOC XML (one file per image) → `LabelSet`.

VOC coordinates are 1-based and inclusive, so ``xmin..xmax`` becomes ``x = xmin - 1``,
``w = xmax - xmin + 1`` (the conversion Detectron and the BCCD/raccoon COCO files use; a box with
``xmin == xmax`` is one pixel wide). ``difficult`` objects become ``iscrowd = 1``: COCO
evaluation ignores them as VOC's does, and visionkit's detectors leave them out of training.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from visionkit.data.images import image_size
from visionkit.data.label_formats.labels import LabeledImage, LabelSet, relative_name
from visionkit.errors import DatasetError, ImageReadError


def read_voc(annotations: str | os.PathLike, images: str | os.PathLike | None = None, *,
             image_root: str | os.PathLike | None = None, classes: list[str] | None = None,
             ids: list[str] | None = None) -> LabelSet:
    """Read every ``*.xml`` in ``annotations`` (or those whose stem is in ``ids``).

    Args:
        annotations: folder of VOC XML files.
        images: folder the XML ``filename`` is in (default: ``../JPEGImages`` beside the
            annotations folder when it exists, else the annotations folder).
        image_root: what the COCO ``file_name`` is relative to (default: ``images``).
        classes: the class names in order; names outside it are skipped and named. Default:
            the names met, in sorted order.
        ids: the file stems to read (a VOC ``ImageSets/Main/*.txt`` split).
    """
    annotations = Path(annotations)
    if not annotations.is_dir():
        raise DatasetError(f"{annotations}: no such folder of VOC XML files")
    if images is None:
        sibling = annotations.parent / "JPEGImages"
        images = sibling if sibling.is_dir() else annotations
    images = Path(images)
    root = Path(image_root) if image_root is not None else images
    if ids is None:
        files = sorted(annotations.glob("*.xml"))
    else:
        files = [annotations / f"{stem}.xml" for stem in ids]
    if not files:
        raise DatasetError(f"{annotations}: no .xml files")
    labels = LabelSet(list(classes or []), fixed_classes=classes is not None)
    for path in files:
        _read_file(path, images, root, labels)
    if classes is None:
        labels.classes.sort()
    return labels


def _text(node: ET.Element, tag: str) -> str | None:
    found = node.find(tag)
    return found.text.strip() if found is not None and found.text is not None else None


def _read_file(path: Path, images: Path, root: Path, labels: LabelSet) -> None:
    if not path.is_file():
        labels.issue(str(path), "no such annotation file (listed in the split)")
        return
    try:
        tree = ET.parse(path).getroot()
    except ET.ParseError as err:
        labels.issue(str(path), f"not valid XML ({err})")
        return
    name = _text(tree, "filename")
    if not name:
        labels.issue(str(path), "no <filename>")
        return
    image_path = images / name
    try:
        width, height = image_size(image_path)
    except (ImageReadError, FileNotFoundError):
        labels.issue(str(path), f"image {image_path} is missing or unreadable")
        return
    size = tree.find("size")
    stated = (None, None) if size is None else (_number(_text(size, "width")),
                                                 _number(_text(size, "height")))
    if None not in stated and stated != (0, 0) and stated != (width, height):  # 0 x 0: unknown
        labels.issue(str(path), f"<size> says {stated[0]:g}x{stated[1]:g} but the image is "
                                f"{width}x{height}", "used the image's size")
    image = LabeledImage(relative_name(image_path, root), width, height)
    for index, obj in enumerate(tree.findall("object")):
        record = f"{path} object {index}"
        label = _text(obj, "name")
        box = obj.find("bndbox")
        corners = [_number(_text(box, tag)) if box is not None else None
                   for tag in ("xmin", "ymin", "xmax", "ymax")]
        if not label or None in corners:
            labels.issue(record, "no <name> or incomplete <bndbox>")
            continue
        xmin, ymin, xmax, ymax = corners
        difficult = _text(obj, "difficult") == "1"
        labels.add_box(image, record, (xmin - 1, ymin - 1, xmax, ymax), label, iscrowd=int(difficult))
    labels.images.append(image)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
