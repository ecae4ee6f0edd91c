"""Detection labels in other formats (Pascal VOC XML, YOLO txt, LabelMe JSON) to COCO and back.

`convert_to_coco` reads one format into a `LabelSet` (`read_voc`, `read_yolo`, `read_labelme`)
and writes its COCO instances JSON; `write_yolo` writes a COCO set as YOLO labels. Every record
skipped or fixed on the way (box clipped to its image, box outside it, unknown class, missing
image, malformed line) is an `Issue` naming its file and record, written beside the output as
``<out>.issues.txt``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from visionkit.data.coco_detection import Issue
from visionkit.data.label_formats.labelme import read_labelme
from visionkit.data.label_formats.labels import LabelSet, read_class_names, read_split_ids, to_coco
from visionkit.data.label_formats.voc import read_voc
from visionkit.data.label_formats.yolo import read_yolo, write_yolo
from visionkit.errors import DatasetError
from visionkit.fileio import atomic_open, write_json

SOURCE_FORMATS = ("voc", "yolo", "labelme")

__all__ = ["SOURCE_FORMATS", "LabelSet", "convert_to_coco", "issues_path", "read_class_names",
           "read_labelme", "read_split_ids", "read_voc", "read_yolo", "to_coco", "write_issues",
           "write_yolo"]


def convert_to_coco(fmt: str, source: str | os.PathLike, out: str | os.PathLike, *,
                    images: str | os.PathLike | None = None,
                    labels_dir: str | os.PathLike | None = None,
                    image_root: str | os.PathLike | None = None,
                    classes: list[str] | None = None, ids: list[str] | None = None) -> LabelSet:
    """Read ``source`` in format ``fmt`` and write its COCO JSON to ``out`` (atomically).

    ``images``: VOC's image folder; ``labels_dir``: YOLO's labels folder; ``ids``: VOC only,
    the stems to read. Raises `DatasetError` when nothing is left to write.
    """
    if fmt == "voc":
        labels = read_voc(source, images, image_root=image_root, classes=classes, ids=ids)
    elif fmt == "yolo":
        labels = read_yolo(source, labels=labels_dir, image_root=image_root, classes=classes)
    elif fmt == "labelme":
        labels = read_labelme(source, image_root=image_root, classes=classes)
    else:
        raise DatasetError(f"unknown label format {fmt!r}; choose one of {', '.join(SOURCE_FORMATS)}")
    if not labels.images:
        raise DatasetError(f"{source}: no image could be read ({len(labels.issues)} issues, "
                           f"first: {labels.issues[0] if labels.issues else 'none'})")
    write_json(out, to_coco(labels))
    write_issues(issues_path(out), labels.issues)
    return labels


def issues_path(out: str | os.PathLike) -> Path:
    """``<out>.issues.txt``: where the records skipped or fixed while writing ``out`` are listed."""
    return Path(f"{out}.issues.txt")


def write_issues(path: str | os.PathLike, issues: Sequence[Issue]) -> None:
    """List ``issues`` one per line in ``path`` (removed when there are none)."""
    path = Path(path)
    if not issues:
        path.unlink(missing_ok=True)
        return
    with atomic_open(path) as f:
        f.write("".join(f"{issue}\n" for issue in issues))
