"""COCO instances JSON + an image folder as a Dataset of ``(image, target)`` pairs for detectors.

An item is a float ``[3, H, W]`` image in 0–1 and a target ``{"boxes" xyxy float32 [N, 4],
"labels" int64 [N] in 1..K, "image_id" int64, "iscrowd" int64 [N], "area" float32 [N]}``.
Category ids map to contiguous labels ``1..K`` in increasing id order (``0`` is the background,
so a detector needs ``num_classes = K + 1``); ``classes`` keeps the names and
``label_to_category`` the way back. Images without annotations are kept (negatives);
``iscrowd=1`` boxes stay in the target, and detectors leave them out of training.

Invalid records never pass silently. Each is reported once with its annotation or image id,
in ``dataset.issues`` and one warning, and handled by this policy (``on_invalid="error"``
raises `DatasetError` listing them instead; ``"collect"`` applies the policy without the
warning, for a caller that reports ``dataset.issues`` itself):

- image record without ``id``, ``file_name``, ``width`` or ``height``, or with a size ≤ 0:
  the image is dropped with its annotations;
- image file missing under ``image_root``: the image is dropped with its annotations;
- annotation without ``id``, ``image_id``, ``bbox`` or ``category_id``, with a bbox that is not
  four finite numbers, with width or height ≤ 0, of an unknown image or category: dropped;
- box partly outside its image: clipped to the image; wholly outside: dropped.

A file that cannot be read as a whole (not JSON, no ``images``/``annotations``/``categories``
lists, category without ``id``/``name``, duplicate image, annotation or category ids) raises
`DatasetError`, and so does one left with no image or no box at all once invalid records are
dropped: a detector can neither learn from it nor be scored on it.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from visionkit.data.images import read_image
from visionkit.errors import DatasetError

IMAGE_FIELDS = ("id", "file_name", "width", "height")
ANNOTATION_FIELDS = ("id", "image_id", "bbox", "category_id")
MAX_LISTED = 10  # issues quoted in a warning or error; all are in `dataset.issues`

Transform = Callable[[np.ndarray, dict[str, Any]], tuple[np.ndarray, dict[str, Any]]]


@dataclass(frozen=True)
class Issue:
    """One invalid record: which (``"annotation id 7 (image id 3)"``), what, and what was done."""

    record: str
    problem: str
    action: str  # "dropped" or "clipped"

    def __str__(self) -> str:
        return f"{self.record}: {self.problem} -> {self.action}"


def _empty(shape: tuple[int, ...], dtype: type = np.float32) -> Callable[[], np.ndarray]:
    return lambda: np.zeros(shape, dtype)


@dataclass
class ImageRecord:
    """A valid image and its valid annotations (boxes xyxy, after clipping)."""

    image_id: int
    path: Path
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=_empty((0, 4)))  # [N, 4] float32
    category_ids: np.ndarray = field(default_factory=_empty((0,), np.int64))  # [N]
    iscrowd: np.ndarray = field(default_factory=_empty((0,), np.int64))  # [N]
    area: np.ndarray = field(default_factory=_empty((0,)))  # [N] float32


class CocoDetection(Dataset):
    """Detection dataset over a COCO instances JSON; see the module docstring for the policy.

    Args:
        annotation_file: COCO instances JSON.
        image_root: folder that ``file_name`` is relative to.
        transform: ``(image uint8 HWC, target) -> (image, target)``, e.g. from
            `visionkit.data.detection_transforms.detection_train_transform` via
            `apply_detection_transform`; None keeps images and boxes as they are.
        on_invalid: "warn" (apply the policy and warn once), "error" (raise) or "collect"
            (apply the policy; the caller reports ``issues``).
        categories: category id -> name, defining the label map; default the file's own. Pass
            the training set's (`read_categories`) to a validation set so labels agree.
        proposals: ``(record, image) -> [P, 4]`` xyxy region proposals of an image (e.g. a
            `visionkit.data.proposal_cache.ProposalCache`); they go through ``transform`` with
            the boxes and appear in the target as ``"proposals"`` (float32 ``[P, 4]``).
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike,
        image_root: str | os.PathLike,
        transform: Transform | None = None,
        *,
        on_invalid: Literal["warn", "error", "collect"] = "warn",
        categories: Mapping[int, str] | None = None,
        proposals: Callable[[ImageRecord, np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if on_invalid not in ("warn", "error", "collect"):
            raise ValueError(f"on_invalid must be 'warn', 'error' or 'collect', got {on_invalid!r}")
        self.annotation_file = Path(annotation_file)
        self.image_root = Path(image_root)
        self.transform = transform
        self.proposals = proposals
        data = _read_json(self.annotation_file)
        if categories is None:
            categories = _categories(data["categories"], self.annotation_file)
        self.category_ids: list[int] = sorted(categories)
        self.classes: list[str] = [categories[c] for c in self.category_ids]
        self.label_to_category = {i + 1: c for i, c in enumerate(self.category_ids)}
        self.category_to_label = {c: i for i, c in self.label_to_category.items()}
        self.issues: list[Issue] = []
        self.records = self._parse(data)
        self._report(on_invalid)
        self._require_boxes()

    @property
    def num_classes(self) -> int:
        """Classes of a detector for this dataset: K categories + background."""
        return len(self.classes) + 1

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        record = self.records[index]
        image = read_image(record.path)
        if image.shape[:2] != (record.height, record.width):
            raise DatasetError(
                f"{self.annotation_file}: image id {record.image_id} ({record.path}) is "
                f"{image.shape[1]}x{image.shape[0]} px but the JSON says "
                f"{record.width}x{record.height}")
        target: dict[str, Any] = {
            "boxes": record.boxes,
            "labels": np.array([self.category_to_label[c] for c in record.category_ids], np.int64),
            "iscrowd": record.iscrowd,
            "area": record.area,
        }
        if self.proposals is not None:
            target["proposals"] = self.proposals(record, image)
        if self.transform is not None:
            image, target = self.transform(image, target)
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255)
        out = {
            "boxes": torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.as_tensor(target["labels"], dtype=torch.int64),
            "image_id": torch.tensor(record.image_id, dtype=torch.int64),
            "iscrowd": torch.as_tensor(target["iscrowd"], dtype=torch.int64),
            "area": torch.as_tensor(target["area"], dtype=torch.float32),
        }
        if "proposals" in target:
            out["proposals"] = torch.as_tensor(target["proposals"], dtype=torch.float32).reshape(-1, 4)
        return tensor, out

    def _issue(self, record: str, problem: str, action: str = "dropped") -> None:
        self.issues.append(Issue(record, problem, action))

    def _parse(self, data: dict[str, Any]) -> list[ImageRecord]:
        images: dict[int, ImageRecord] = {}
        for i, img in enumerate(data["images"]):
            record = self._image(i, img)
            if record is not None:
                images[record.image_id] = record
        rows: dict[int, list[tuple[list[float], int, int, float]]] = {}
        for i, ann in enumerate(data["annotations"]):
            row = self._annotation(i, ann, images)
            if row is not None:
                rows.setdefault(int(ann["image_id"]), []).append(row)
        for image_id, found in rows.items():
            record = images[image_id]
            record.boxes = np.array([r[0] for r in found], np.float32).reshape(-1, 4)
            record.category_ids = np.array([r[1] for r in found], np.int64)
            record.iscrowd = np.array([r[2] for r in found], np.int64)
            record.area = np.array([r[3] for r in found], np.float32)
        return list(images.values())

    def _image(self, index: int, img: Any) -> ImageRecord | None:
        """A valid image record, or None after reporting why not."""
        if not isinstance(img, dict):
            self._issue(f"image #{index}", "is not an object")
            return None
        name = f"image id {img['id']}" if "id" in img else f"image #{index}"
        missing = [f for f in IMAGE_FIELDS if f not in img]
        if missing:
            self._issue(name, f"missing field {', '.join(map(repr, missing))}")
            return None
        if not _is_int(img["id"]):
            self._issue(f"image #{index}", f"id {img['id']!r} is not an integer")
            return None
        if not (_is_int(img["width"]) and _is_int(img["height"])) or min(img["width"], img["height"]) <= 0:
            self._issue(name, f"size {img['width']!r}x{img['height']!r} is not positive integers")
            return None
        path = self.image_root / str(img["file_name"])
        if not path.is_file():
            self._issue(name, f"image file {path} does not exist")
            return None
        return ImageRecord(int(img["id"]), path, int(img["width"]), int(img["height"]))

    def _annotation(self, index: int, ann: Any, images: Mapping[int, ImageRecord]
                    ) -> tuple[list[float], int, int, float] | None:
        """(xyxy box, category id, iscrowd, area) of a valid annotation, else None (reported)."""
        if not isinstance(ann, dict):
            self._issue(f"annotation #{index}", "is not an object")
            return None
        name = f"annotation id {ann['id']}" if "id" in ann else f"annotation #{index}"
        if "image_id" in ann:
            name += f" (image id {ann['image_id']})"
        missing = [f for f in ANNOTATION_FIELDS if f not in ann]
        if missing:
            self._issue(name, f"missing field {', '.join(map(repr, missing))}")
            return None
        if not _is_int(ann["image_id"]) or int(ann["image_id"]) not in images:
            self._issue(name, f"image_id {ann['image_id']!r} is not a (valid) image of the file")
            return None
        if not _is_int(ann["category_id"]) or int(ann["category_id"]) not in self.category_to_label:
            self._issue(name, f"unknown category_id {ann['category_id']!r} "
                              f"(known: {self.category_ids})")
            return None
        bbox = ann["bbox"]
        if not (isinstance(bbox, list | tuple) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            self._issue(name, f"bbox {bbox!r} is not 4 finite numbers [x, y, w, h]")
            return None
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0:
            self._issue(name, f"bbox {bbox!r} has width or height <= 0")
            return None
        image = images[int(ann["image_id"])]
        box = [min(max(x, 0.0), image.width), min(max(y, 0.0), image.height),
               min(max(x + w, 0.0), image.width), min(max(y + h, 0.0), image.height)]
        if box[2] <= box[0] or box[3] <= box[1]:
            self._issue(name, f"bbox {bbox!r} lies outside the {image.width}x{image.height} image")
            return None
        if box != [x, y, x + w, y + h]:
            self._issue(name, f"bbox {bbox!r} reaches outside the {image.width}x{image.height} "
                              f"image", "clipped")
        area = ann.get("area")
        area = float(area) if _is_number(area) and area > 0 else (box[2] - box[0]) * (box[3] - box[1])
        return box, int(ann["category_id"]), int(ann.get("iscrowd", 0) == 1), area

    def _require_boxes(self) -> None:
        """Raise unless some image is left and some box with it (a file of negatives only is wrong)."""
        if any(len(record.boxes) for record in self.records):
            return
        what = "annotations" if self.records else "images"
        first = f"; {len(self.issues)} invalid records, first: {self.issues[0]}" if self.issues else ""
        raise DatasetError(f"{self.annotation_file}: no usable {what} ({len(self.records)} images, "
                           f"0 boxes{first}); a detector needs boxes to train on and be scored against")

    def _report(self, on_invalid: str) -> None:
        if not self.issues or on_invalid == "collect":
            return
        head = f"{self.annotation_file}: {len(self.issues)} invalid records"
        if on_invalid == "error":  # one line: the first record and what is wrong with it
            first = self.issues[0]
            raise DatasetError(f"{head}, first {first.record}: {first.problem} (fix them, or pass "
                               f"on_invalid='warn' to drop or clip them)")
        listed = "; ".join(str(issue) for issue in self.issues[:MAX_LISTED])
        more = f"; ... and {len(self.issues) - MAX_LISTED} more" if len(self.issues) > MAX_LISTED else ""
        warnings.warn(f"{head} dropped or clipped: {listed}{more}", stacklevel=3)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as err:
        raise DatasetError(f"{path}: annotation file not found") from err
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: a COCO file is a JSON object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DatasetError(f"{path}: missing top-level key {key!r} (a COCO instances file has "
                               f"'images', 'annotations' and 'categories' lists)")
        if not isinstance(data[key], list):
            raise DatasetError(f"{path}: top-level key {key!r} must be a list, got "
                               f"{type(data[key]).__name__}")
    _require_unique_ids(data["images"], "image", path)
    _require_unique_ids(data["annotations"], "annotation", path)
    return data


def _require_unique_ids(records: Sequence[Any], what: str, path: Path) -> None:
    """Raise naming the repeated integer ``id`` values of ``records``."""
    counts = Counter(r["id"] for r in records if isinstance(r, dict) and _is_int(r.get("id")))
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        raise DatasetError(f"{path}: duplicate {what} ids {duplicates[:MAX_LISTED]} (field 'id' "
                           f"of the {what}s must be unique)")


def read_categories(annotation_file: str | os.PathLike) -> dict[int, str]:
    """Category id -> name of a COCO file (its other records are checked by `CocoDetection`)."""
    path = Path(annotation_file)
    return _categories(_read_json(path)["categories"], path)


def _categories(categories: Sequence[Any], source: Path) -> dict[int, str]:
    """Category id -> name; a malformed or duplicate category makes the file unusable."""
    out: dict[int, str] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or "name" not in cat:
            raise DatasetError(f"{source}: category #{i} needs an integer 'id' and a 'name', got {cat!r}")
        if cat["id"] in out:
            raise DatasetError(f"{source}: duplicate category id {cat['id']}")
        out[int(cat["id"])] = str(cat["name"])
    if not out:
        raise DatasetError(f"{source}: no categories")
    return out


def collate_detection(batch: Sequence[tuple[Tensor, dict[str, Tensor]]]
                      ) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    """Batch as (list of images, list of targets): detectors take variable-size images."""
    return [image for image, _ in batch], [target for _, target in batch]
