"""What a COCO detection set holds and what is wrong with it, before anyone trains on it.

`check_labels` reads the set with `CocoDetection`'s policy (every invalid record becomes an
issue instead of a warning), compares each image file's size with the JSON's, and counts boxes
per class, per image and by size.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionkit.data.coco_detection import CocoDetection, Issue
from visionkit.data.images import image_size
from visionkit.errors import ImageReadError


@dataclass
class LabelReport:
    """Counts and problems of one COCO set."""

    images: int
    boxes_per_class: dict[str, int]
    crowd_boxes: int
    boxes_per_image: list[int]
    box_sides: np.ndarray  # [N] sqrt(area) in pixels, every box
    issues: list[Issue] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as printable lines (problems listed last, all of them)."""
        per_image = np.asarray(self.boxes_per_image)
        total = int(per_image.sum())
        out = [f"{self.images} images, {total} boxes ({self.crowd_boxes} crowd), "
               f"{len(self.boxes_per_class)} classes"]
        out += [f"  {name}: {count}" for name, count in self.boxes_per_class.items()]
        if len(per_image):
            out.append(f"boxes per image: min {per_image.min()}, median {np.median(per_image):g}, "
                       f"max {per_image.max()}; {int((per_image == 0).sum())} images with none")
        if len(self.box_sides):
            low, mid, high = np.percentile(self.box_sides, [5, 50, 95])
            out.append(f"box side (sqrt of area, px): 5% {low:.1f}, median {mid:.1f}, 95% {high:.1f}; "
                       f"COCO small/medium/large: {int((self.box_sides < 32).sum())}/"
                       f"{int(((self.box_sides >= 32) & (self.box_sides < 96)).sum())}/"
                       f"{int((self.box_sides >= 96).sum())}")
        out.append(f"{len(self.issues)} problems" + (":" if self.issues else ""))
        out += [f"  {issue}" for issue in self.issues]
        return out


def check_labels(annotation_file: str | os.PathLike, image_root: str | os.PathLike) -> LabelReport:
    """Read ``annotation_file`` (images under ``image_root``) and report counts and problems."""
    dataset = CocoDetection(annotation_file, image_root, on_invalid="collect")  # reported below
    issues = list(dataset.issues)
    names = dict(zip(dataset.category_ids, dataset.classes, strict=True))
    per_class: Counter[str] = Counter({name: 0 for name in dataset.classes})
    sides, per_image, crowd = [], [], 0
    for record in dataset.records:
        try:
            width, height = image_size(record.path)
            if (width, height) != (record.width, record.height):
                issues.append(Issue(f"image id {record.image_id} ({record.path})",
                                    f"the JSON says {record.width}x{record.height} but the file "
                                    f"is {width}x{height}", "left as is"))
        except ImageReadError as err:
            issues.append(Issue(f"image id {record.image_id}", str(err), "left as is"))
        per_image.append(len(record.boxes))
        crowd += int(record.iscrowd.sum())
        per_class.update(names[int(c)] for c in record.category_ids)
        wh = record.boxes[:, 2:] - record.boxes[:, :2]  # [N, 2]
        sides.append(np.sqrt(wh[:, 0] * wh[:, 1]))
    return LabelReport(len(dataset.records), dict(per_class), crowd, per_image,
                       np.concatenate(sides) if sides else np.zeros(0), issues)


def default_report_dir(annotation_file: str | os.PathLike) -> Path:
    """``runs/data_check/<json stem>/``."""
    return Path("runs", "data_check", Path(annotation_file).stem)
