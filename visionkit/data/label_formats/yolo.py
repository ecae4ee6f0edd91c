"""YOLO txt labels (one file per image: ``class cx cy w h`` normalised to 0–1) ↔ COCO.

Reading: the images are a folder (searched recursively) or a ``.txt`` list of image paths (the
Ultralytics form; relative paths are relative to the list's folder). An image's label file is
``labels/<its path relative to the image root>.txt``; the labels folder defaults to the
Ultralytics rule (the last ``images`` folder in the path replaced by ``labels``), else the image
folder itself. A line with more than five numbers is a polygon (``class x1 y1 x2 y2 ...``,
YOLO segmentation): its box is the polygon's extent. An image without a label file is kept with
no boxes (a negative; named in the issues). Class names come from ``--classes`` or the first
``classes.txt`` in the labels folder, its parent, the image root or the image list's folder.

Writing (`write_yolo`): ``labels/<file_name>.txt`` per image of a COCO set (its path below the
COCO image root), ``classes.txt`` (the categories in id order) and ``images.txt`` (the image
paths, relative to the output folder). `read_yolo` reads them back from ``images.txt`` (labels
and classes found beside it) with ``image_root`` = the COCO image root. Crowd boxes have no YOLO
form: they are left out and named; so are two images whose label files would coincide.
"""

from __future__ import annotations

import os
from pathlib import Path

from visionkit.data.coco_detection import CocoDetection, Issue
from visionkit.data.images import image_size, is_image_file
from visionkit.data.label_formats.labels import LabeledImage, LabelSet, read_class_names, relative_name
from visionkit.errors import DatasetError, ImageReadError
from visionkit.fileio import atomic_open

CLASS_FILE = "classes.txt"
IMAGE_LIST = "images.txt"


def read_yolo(images: str | os.PathLike, *, labels: str | os.PathLike | None = None,
              image_root: str | os.PathLike | None = None,
              classes: list[str] | None = None) -> LabelSet:
    """Read YOLO labels of the images in ``images`` (a folder or a ``.txt`` list).

    Args:
        images: a folder of images (recursive) or a text file listing image paths.
        labels: the labels folder (default: see the module docstring).
        image_root: what label paths and COCO ``file_name`` are relative to (default: the image
            folder; for a list, the list's folder).
        classes: class names by index (default: a ``classes.txt``, see the module docstring).
    """
    images = Path(images)
    paths = _image_paths(images)
    root = Path(image_root) if image_root is not None else (images if images.is_dir() else images.parent)
    if labels is not None:
        labels_dir = Path(labels)
    elif images.is_file() and (images.parent / "labels").is_dir():  # write_yolo's layout
        labels_dir = images.parent / "labels"
    else:
        labels_dir = _default_labels(root)
    if classes is None:
        places = (labels_dir, labels_dir.parent, root, images if images.is_dir() else images.parent)
        found = [d / CLASS_FILE for d in places if (d / CLASS_FILE).is_file()]
        if not found:
            raise DatasetError(f"{labels_dir}: no {CLASS_FILE}; YOLO labels hold class indices, so "
                               f"pass the names with --classes FILE (one per line)")
        classes = read_class_names(found[0])
    out = LabelSet(list(classes), fixed_classes=True)
    claimed: dict[Path, Path] = {}  # label file -> the image it was read for
    for path in paths:
        try:
            width, height = image_size(path)
        except (ImageReadError, FileNotFoundError):
            out.issue(str(path), "image missing or unreadable")
            continue
        name = relative_name(path, root)
        image = LabeledImage(name, width, height)
        label_file = labels_dir / Path(name).with_suffix(".txt")
        if label_file in claimed:
            out.issue(str(path), f"its label file {label_file} is also {claimed[label_file]}'s "
                                 f"(same name, other extension)")
            continue
        claimed[label_file] = path
        if not label_file.is_file():
            out.issue(str(path), f"no label file {label_file}", "kept with no boxes")
        else:
            _read_label_file(label_file, image, out)
        out.images.append(image)
    return out


def _image_paths(images: Path) -> list[Path]:
    if images.is_dir():
        paths = sorted(p for p in images.rglob("*") if p.is_file() and is_image_file(p))
    elif images.is_file():
        lines = [line.strip() for line in images.read_text(encoding="utf-8").splitlines()]
        paths = [(images.parent / line) for line in lines if line]
    else:
        raise DatasetError(f"{images}: no such image folder or image list")
    if not paths:
        raise DatasetError(f"{images}: no images")
    return paths


def _default_labels(root: Path) -> Path:
    parts = root.parts
    if "images" in parts:
        last = len(parts) - 1 - parts[::-1].index("images")
        candidate = Path(*parts[:last], "labels", *parts[last + 1:])
        if candidate.is_dir():
            return candidate
    return root


def _read_label_file(path: Path, image: LabeledImage, out: LabelSet) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        record = f"{path} line {number}"
        try:
            index, values = int(fields[0]), [float(v) for v in fields[1:]]
        except ValueError:
            out.issue(record, f"not 'class cx cy w h' numbers: {line.strip()!r}")
            continue
        if not 0 <= index < len(out.classes):
            out.issue(record, f"class index {index} outside the {len(out.classes)} class names")
            continue
        if len(values) == 4:
            cx, cy, w, h = values
            xyxy = ((cx - w / 2) * image.width, (cy - h / 2) * image.height,
                    (cx + w / 2) * image.width, (cy + h / 2) * image.height)
            polygon = None
        elif len(values) >= 6 and len(values) % 2 == 0:
            xs = [x * image.width for x in values[0::2]]
            ys = [y * image.height for y in values[1::2]]
            xyxy = (min(xs), min(ys), max(xs), max(ys))
            polygon = [v for pair in zip(xs, ys, strict=True) for v in pair]
        else:
            out.issue(record, f"{len(values)} numbers after the class: expected 4 (a box) or an "
                              f"even number >= 6 (a polygon)")
            continue
        out.add_box(image, record, xyxy, out.classes[index], polygon=polygon)


def write_yolo(coco_file: str | os.PathLike, out_dir: str | os.PathLike,
               image_root: str | os.PathLike | None = None) -> tuple[int, int, list[Issue]]:
    """Write a COCO set's boxes as YOLO labels under ``out_dir``; (images, boxes, issues).

    Invalid COCO records are handled by `CocoDetection`'s policy and listed with the issues.
    """
    coco_file = Path(coco_file)
    root = Path(image_root) if image_root is not None else coco_file.parent
    dataset = CocoDetection(coco_file, root, on_invalid="collect")  # its issues join ours
    issues = list(dataset.issues)
    out_dir = Path(out_dir)
    index = {category: i for i, category in enumerate(dataset.category_ids)}
    written = 0
    written_for: dict[Path, int] = {}  # label file -> image id
    kept = []
    for record in dataset.records:
        name = relative_name(record.path, root)
        label_file = out_dir / "labels" / Path(name).with_suffix(".txt")
        if label_file in written_for:
            issues.append(Issue(f"{coco_file} image id {record.image_id}", f"its label file "
                                f"{label_file} is also image id {written_for[label_file]}'s", "skipped"))
            continue
        written_for[label_file] = record.image_id
        kept.append(record)
        lines = []
        for box, category, crowd in zip(record.boxes, record.category_ids, record.iscrowd, strict=True):
            if crowd:
                issues.append(Issue(f"{coco_file} image id {record.image_id}", "a crowd box "
                                    "(iscrowd 1) has no YOLO form", "skipped"))
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            values = ((x1 + x2) / 2 / record.width, (y1 + y2) / 2 / record.height,
                      (x2 - x1) / record.width, (y2 - y1) / record.height)
            lines.append(f"{index[int(category)]} " + " ".join(f"{v:.8f}" for v in values))
            written += 1
        with atomic_open(label_file) as f:
            f.write("".join(line + "\n" for line in lines))
    with atomic_open(out_dir / CLASS_FILE) as f:
        f.write("".join(name + "\n" for name in dataset.classes))
    with atomic_open(out_dir / IMAGE_LIST) as f:
        f.write("".join(relative_name(r.path, out_dir) + "\n" for r in kept))
    return len(kept), written, issues
