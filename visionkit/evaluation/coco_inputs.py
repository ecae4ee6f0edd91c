"""Load and validate COCO ground truth and detections into flat numpy arrays (one row per object).

Ground truth: a COCO instances JSON path, its parsed dict, or a pycocotools ``COCO``. Every
annotation needs ``id``, ``image_id``, ``category_id`` and ``bbox`` (``[x, y, w, h]``);
``iscrowd`` defaults to 0 and ``area`` to ``w * h``. Image, category and annotation ids must be
unique integers, and annotations must refer to listed images and categories.

Detections, in one of three forms:

- a COCO results JSON path, or the parsed list: ``{"image_id", "category_id", "bbox": [x, y, w, h],
  "score"}`` per detection (plus ``"segmentation"`` for ``iou_type="segm"``);
- a mapping ``image_id -> {"boxes", "labels", "scores"}`` as our detectors return them: ``boxes``
  an ``xyxy`` float tensor or array ``[N, 4]`` in absolute pixels, ``labels`` ``[N]`` integers,
  ``scores`` ``[N]`` floats.

``labels`` (and ``category_id`` of results) are COCO category ids, unless ``label_to_category``
is given: then they are our detectors' contiguous labels ``1..K`` (``0`` = background, never
output) and the mapping turns each into the dataset's category id.

Every problem raises `DatasetError` naming the file (or input), the record and the field.
"""

from __future__ import annotations

import contextlib
import enum
import io
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from visionkit.errors import ConfigError, DatasetError

_REQUIRED = object()


class _Kind(enum.Enum):
    """What a numeric field may hold. Each value lists the numpy dtype kinds it accepts
    (``dtype.kind``: "b" bool, "i" signed integer, "u" unsigned integer, "f" float)."""

    INTEGER = ("i", "u")  # ids and labels
    NUMBER = ("i", "u", "f")  # scores, areas, box coordinates
    FLAG = ("b", "i", "u")  # iscrowd: a bool or an integer (0 = false)

    def accepts(self, dtype: np.dtype) -> bool:
        """Whether an array of ``dtype`` holds values of this kind."""
        return dtype.kind in self.value

    @property
    def allows_float(self) -> bool:
        """Whether floats are allowed (they must then be finite)."""
        return "f" in self.value

    @property
    def allows_bool(self) -> bool:
        """Whether Python/numpy bools are allowed (they are ints to Python, but not numbers here)."""
        return "b" in self.value


def _is_float(arr: np.ndarray) -> bool:
    """Whether ``arr`` has a floating-point dtype (and so may hold NaN or infinity)."""
    return arr.dtype.kind == "f"


@dataclass(frozen=True)
class _FlatObjects:
    """Per-image dicts ``image_id -> {"boxes", field: [N], ...}`` flattened to one row per object."""

    image_id: np.ndarray  # [N] int64
    bbox: np.ndarray  # [N, 4] float64 xywh
    fields: dict[str, np.ndarray]  # field -> [N]: int64 for required integer fields, else float64
    location: np.ndarray  # [N, 2] int64: (image id, index of the object within its image)
    what: str  # what one object is called in messages: "detection", "object"

    def name(self, i: int) -> str:
        """How error messages name the object in row ``i``."""
        return f"image {self.location[i, 0]} {self.what} {self.location[i, 1]}"


@dataclass(frozen=True)
class CocoGroundTruth:
    """COCO instances as arrays: sorted image/category ids and one row per annotation."""

    source: str
    image_ids: np.ndarray  # [I] int64, sorted
    category_ids: np.ndarray  # [K] int64, sorted
    category_names: tuple[str, ...]  # [K], aligned with category_ids
    image_id: np.ndarray  # [G] int64
    category_id: np.ndarray  # [G] int64
    bbox: np.ndarray  # [G, 4] float64 xywh
    area: np.ndarray  # [G] float64
    iscrowd: np.ndarray  # [G] bool
    ann_id: np.ndarray  # [G] int64
    dataset: Mapping[str, Any] | None = None  # the validated source dict, when there was one

    def to_pycocotools(self) -> Any:
        """A fresh pycocotools ``COCO`` of this ground truth (defaults filled in, input intact)."""
        from pycocotools.coco import COCO

        if self.dataset is not None:
            images = list(self.dataset["images"])
            categories = list(self.dataset["categories"])
            anns = self.dataset["annotations"]
            annotations = [{**a, "area": area, "iscrowd": int(crowd)} for a, area, crowd in zip(
                anns, self.area.tolist(), self.iscrowd.tolist(), strict=True)]
        else:
            images = [{"id": i} for i in self.image_ids.tolist()]
            categories = [{"id": c, "name": n} for c, n in zip(
                self.category_ids.tolist(), self.category_names, strict=True)]
            annotations = [{"id": a, "image_id": i, "category_id": c, "bbox": b, "area": area,
                            "iscrowd": int(crowd)}
                           for a, i, c, b, area, crowd in zip(
                               self.ann_id.tolist(), self.image_id.tolist(),
                               self.category_id.tolist(), self.bbox.tolist(), self.area.tolist(),
                               self.iscrowd.tolist(), strict=True)]
        coco = COCO()
        coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco


@dataclass(frozen=True)
class CocoDetections:
    """Detections as arrays, one row per detection, category ids already mapped."""

    source: str
    image_id: np.ndarray  # [D] int64
    category_id: np.ndarray  # [D] int64
    bbox: np.ndarray  # [D, 4] float64 xywh (NaN for segm results without a bbox)
    score: np.ndarray  # [D] float64
    records: list[Mapping[str, Any]] | None = None  # the raw results, kept for iou_type="segm"

    def to_results(self) -> list[dict[str, Any]]:
        """Fresh COCO result dicts for pycocotools' ``loadRes`` (which modifies what it gets)."""
        if self.records is not None:
            return [dict(r) for r in self.records]
        return [{"image_id": i, "category_id": c, "bbox": b, "score": s} for i, c, b, s in zip(
            self.image_id.tolist(), self.category_id.tolist(), self.bbox.tolist(),
            self.score.tolist(), strict=True)]


def load_ground_truth(gt: str | os.PathLike | Mapping[str, Any] | Any) -> CocoGroundTruth:
    """Read and validate COCO ground truth from a path, a dict or a pycocotools ``COCO``."""
    if isinstance(gt, (str, os.PathLike)):
        source, data = str(gt), _read_json(gt)
    elif isinstance(gt, Mapping):
        source, data = "<ground truth dict>", gt
    elif hasattr(gt, "dataset") and hasattr(gt, "getAnnIds"):
        source, data = "<pycocotools COCO>", gt.dataset
    else:
        raise DatasetError(f"ground truth must be a COCO JSON path, dict or pycocotools COCO, "
                           f"got {type(gt).__name__}")
    if not isinstance(data, Mapping):
        raise DatasetError(f"{source}: expected a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{source}: missing list field '{key}'")
    images, anns, cats = data["images"], data["annotations"], data["categories"]

    image_ids = _column(images, "id", _Kind.INTEGER, source, "image")
    _check_unique(image_ids, source, "image")
    cat_ids = _column(cats, "id", _Kind.INTEGER, source, "category")
    _check_unique(cat_ids, source, "category")
    ann_ids = _column(anns, "id", _Kind.INTEGER, source, "annotation")
    _check_unique(ann_ids, source, "annotation")
    ann_img = _column(anns, "image_id", _Kind.INTEGER, source, "annotation")
    _check_known(ann_img, image_ids, source, lambda i: f"annotation {i}", "image_id", "image")
    ann_cat = _column(anns, "category_id", _Kind.INTEGER, source, "annotation")
    _check_known(ann_cat, cat_ids, source, lambda i: f"annotation {i}", "category_id", "category")
    bbox = _bbox_column(anns, source, "annotation")
    area = _column(anns, "area", _Kind.NUMBER, source, "annotation", default=0).astype(np.float64)
    missing = [i for i, a in enumerate(anns) if "area" not in a]
    area[missing] = bbox[missing, 2] * bbox[missing, 3]
    iscrowd = _column(anns, "iscrowd", _Kind.FLAG, source, "annotation", default=0) != 0
    if (ann_ids == 0).any():
        warnings.warn(f"{source}: annotation {int(np.flatnonzero(ann_ids == 0)[0])} has id 0; "
                      "like pycocotools, a detection matched to it counts as a false positive",
                      stacklevel=2)

    order = np.argsort(cat_ids, kind="stable")
    names = [str(c.get("name", c["id"])) for c in cats]
    return CocoGroundTruth(
        source=source, image_ids=np.sort(image_ids), category_ids=cat_ids[order],
        category_names=tuple(names[i] for i in order), image_id=ann_img, category_id=ann_cat,
        bbox=bbox, area=area, iscrowd=iscrowd, ann_id=ann_ids, dataset=data)


def load_detections(detections: str | os.PathLike | Sequence[Mapping[str, Any]] | Mapping[Any, Any],
                    gt: CocoGroundTruth, *, label_to_category: Mapping[int, int] | None = None,
                    iou_type: str = "bbox") -> CocoDetections:
    """Read and validate detections: results JSON path, list of result dicts, per-image tensors."""
    records: list[Mapping[str, Any]] | None = None
    if isinstance(detections, Mapping):
        if iou_type != "bbox":
            raise ConfigError("per-image tensor detections only support iou_type='bbox'")
        source = "<detections>"
        flat = _per_image(detections, source, "detection",
                          {"labels": _Kind.INTEGER, "scores": _Kind.NUMBER})
        img, bbox, name = flat.image_id, flat.bbox, flat.name
        labels, score = flat.fields["labels"], flat.fields["scores"]
        label_field = "labels"
    else:
        if isinstance(detections, (str, os.PathLike)):
            source, records = str(detections), _read_json(detections)
        else:
            source, records = "<detections list>", detections
        if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
            raise DatasetError(f"{source}: expected a JSON list of COCO results")
        img = _column(records, "image_id", _Kind.INTEGER, source, "result")
        labels = _column(records, "category_id", _Kind.INTEGER, source, "result")
        score = _column(records, "score", _Kind.NUMBER, source, "result").astype(np.float64)
        if iou_type == "bbox":
            bbox = _bbox_column(records, source, "result")
        else:
            _require_field(records, "segmentation", source, "result")
            bbox = np.full((len(records), 4), np.nan)
        label_field = "category_id"
        name = _result_name

    if label_to_category is not None:
        labels = _map_labels(labels, label_to_category, source, name, label_field)
    _check_known(img, gt.image_ids, source, name, "image_id", f"image in {gt.source}")
    _check_known(labels, gt.category_ids, source, name, label_field,
                 f"category in {gt.source}")
    return CocoDetections(source=source, image_id=img, category_id=labels, bbox=bbox, score=score,
                          records=list(records) if records is not None and iou_type != "bbox"
                          else None)


def to_numpy(x: Any) -> np.ndarray:
    """A CPU numpy array of a tensor (floats widened to float64) or of anything array-like."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        x = x.double() if x.is_floating_point() else x
        return x.numpy()
    return np.asarray(x)


def ground_truth_from_targets(targets: Mapping[Any, Mapping[str, Any]], category_ids: Sequence[int],
                              *, category_names: Mapping[int, str] | None = None,
                              label_to_category: Mapping[int, int] | None = None
                              ) -> CocoGroundTruth:
    """Ground truth from our dataset targets, image id -> ``{"boxes" xyxy [N, 4], "labels" [N],
    "iscrowd" [N] (default 0), "area" [N] (default the box area)}``; every key is an image."""
    source = "<targets>"
    flat = _per_image(targets, source, "object", {"labels": _Kind.INTEGER},
                      {"iscrowd": _Kind.FLAG, "area": _Kind.NUMBER})
    labels = flat.fields["labels"]
    if label_to_category is not None:
        labels = _map_labels(labels, label_to_category, source, flat.name, "labels")
    cat_ids = np.unique(np.asarray(category_ids, dtype=np.int64))
    _check_known(labels, cat_ids, source, flat.name, "labels", "category being evaluated")
    area = np.where(np.isnan(flat.fields["area"]), flat.bbox[:, 2] * flat.bbox[:, 3], flat.fields["area"])
    names = category_names or {}
    return CocoGroundTruth(
        source=source, image_ids=np.unique(np.array([int(k) for k in targets], dtype=np.int64)),
        category_ids=cat_ids, category_names=tuple(str(names.get(c, c)) for c in cat_ids.tolist()),
        image_id=flat.image_id, category_id=labels, bbox=flat.bbox, area=area,
        iscrowd=np.nan_to_num(flat.fields["iscrowd"]) != 0, ann_id=np.arange(1, len(flat.image_id) + 1))


def _per_image(items: Mapping[Any, Any], source: str, what: str, required: Mapping[str, _Kind],
               optional: Mapping[str, _Kind] | None = None) -> _FlatObjects:
    """Concatenate ``image_id -> {"boxes" xyxy [N, 4], field: [N], ...}`` into flat arrays.

    ``required`` and ``optional`` map field names to the kind of value they hold; an optional
    field missing from an image reads as NaN there. ``what`` names one object in messages.
    """
    optional = optional or {}
    imgs, boxes, locations = [], [], []
    columns: dict[str, list[np.ndarray]] = {f: [] for f in (*required, *optional)}
    for key, item in items.items():
        image_id = int(key)
        if not isinstance(item, Mapping):
            raise DatasetError(f"{source}: image {image_id}: expected a dict, got "
                               f"{type(item).__name__}")
        for field in ("boxes", *required):
            if field not in item:
                raise DatasetError(f"{source}: image {image_id}: missing field '{field}'")
        xyxy = to_numpy(item["boxes"]).astype(np.float64)  # [n, 4]
        xyxy = xyxy.reshape(0, 4) if xyxy.size == 0 else xyxy
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise DatasetError(f"{source}: image {image_id}: field 'boxes': expected shape [N, 4], "
                               f"got {list(xyxy.shape)}")
        _check_finite(xyxy, f"{source}: image {image_id} {what}", "boxes")
        count = len(xyxy)
        for field, kind in (*required.items(), *optional.items()):
            if field not in item:
                columns[field].append(np.full(count, np.nan))
                continue
            arr = to_numpy(item[field])
            if arr.shape != (count,) or (arr.size and not kind.accepts(arr.dtype)):
                raise DatasetError(f"{source}: image {image_id}: field '{field}': expected "
                                   f"{count} {'numbers' if kind.allows_float else 'integers'}, "
                                   f"got shape {list(arr.shape)} of {arr.dtype}")
            if kind.allows_float:
                _check_finite(arr, f"{source}: image {image_id} {what}", field)
            columns[field].append(arr)
        imgs.append(np.full(count, image_id, dtype=np.int64))
        boxes.append(np.stack([xyxy[:, 0], xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]],
                              axis=1))
        locations.append(np.stack([np.full(count, image_id), np.arange(count)], axis=1))

    fields = {f: (np.concatenate(c) if c else np.zeros(0)) for f, c in columns.items()}
    for f, kind in required.items():
        fields[f] = fields[f].astype(np.int64 if kind is _Kind.INTEGER else np.float64)
    return _FlatObjects(
        image_id=np.concatenate(imgs) if imgs else np.zeros(0, dtype=np.int64),
        bbox=np.concatenate(boxes) if boxes else np.zeros((0, 4)), fields=fields,
        location=np.concatenate(locations) if locations else np.zeros((0, 2), dtype=np.int64),
        what=what)


def _result_name(i: int) -> str:
    """How error messages name the ``i``-th record of a COCO results list."""
    return f"result {i}"


def _check_finite(arr: np.ndarray, record: str, field: str) -> None:
    """Raise naming the first row of ``arr`` with a NaN or infinite value (``record`` + index)."""
    if not arr.size:
        return
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(1)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise DatasetError(f"{record} {j}: field '{field}': expected finite numbers, got "
                           f"{arr[j].tolist()}")


def _read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; missing files and bad JSON become `DatasetError`."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: not valid JSON ({err})") from None


def _column(records: Sequence[Any], field: str, kind: _Kind, source: str, what: str,
            default: Any = _REQUIRED) -> np.ndarray:
    """Field ``field`` of every record as an array of ``kind`` (int64 for `_Kind.INTEGER`).

    Floats must be finite. The fast path reads all records at once; when that fails the records
    are scanned to name the first bad one.
    """
    try:
        if default is _REQUIRED:
            values = [r[field] for r in records]
        else:
            values = [r.get(field, default) for r in records]
        arr = np.asarray(values)
    except (KeyError, TypeError, AttributeError, ValueError):
        arr = None
    if arr is not None and (len(arr) == 0 or (arr.ndim == 1 and kind.accepts(arr.dtype) and (
            not _is_float(arr) or np.isfinite(arr).all()))):
        return arr.astype(np.int64) if kind is _Kind.INTEGER else arr
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise DatasetError(f"{source}: {what} {i}: expected an object, got {type(r).__name__}")
        if field not in r:
            if default is _REQUIRED:
                raise DatasetError(f"{source}: {what} {i}: missing field '{field}'"
                                   f"{_in_all(records, i, field)}")
            continue
        problem = _value_problem(r[field], kind)
        if problem:
            raise DatasetError(f"{source}: {what} {i}: field '{field}': {problem}")
    raise DatasetError(f"{source}: field '{field}' of the {what}s cannot be read as one array")


def _require_field(records: Sequence[Any], field: str, source: str, what: str) -> None:
    """Raise naming the first record that is not an object or lacks ``field``."""
    for i, r in enumerate(records):
        if not isinstance(r, Mapping) or field not in r:
            raise DatasetError(f"{source}: {what} {i}: missing field '{field}'")


def _value_problem(value: Any, kind: _Kind) -> str | None:
    """Why ``value`` is not a valid scalar of ``kind``, or None when it is."""
    if isinstance(value, bool) and not kind.allows_bool:
        return f"expected a number, got {value!r}"
    if kind.allows_float:
        if not isinstance(value, (int, float, np.integer, np.floating)):
            return f"expected a number, got {value!r:.60}"
        if not math.isfinite(value):
            return f"expected a finite number, got {value!r}"
    elif not isinstance(value, (int, np.integer)):
        return f"expected an integer, got {value!r:.60}"
    return None


def _bbox_column(records: Sequence[Any], source: str, what: str) -> np.ndarray:
    """The ``bbox`` field of every record as a float64 ``[N, 4]`` array."""
    try:
        arr = np.asarray([r["bbox"] for r in records])
    except (KeyError, TypeError, ValueError):
        arr = None
    if arr is not None and len(records) == 0:
        return np.zeros((0, 4))
    if (arr is not None and arr.shape == (len(records), 4) and _Kind.NUMBER.accepts(arr.dtype)
            and np.isfinite(arr).all()):
        return arr.astype(np.float64)
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise DatasetError(f"{source}: {what} {i}: expected an object, got {type(r).__name__}")
        if "bbox" not in r:
            hint = (" (segmentation results: evaluate them with iou_type 'segm', --iou-type segm)"
                    if "segmentation" in r else "")
            raise DatasetError(f"{source}: {what} {i}: missing field 'bbox'{_in_all(records, i)}{hint}")
        box = r["bbox"]
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise DatasetError(f"{source}: {what} {i}: field 'bbox': expected 4 numbers "
                               f"[x, y, width, height], got {box!r:.80}")
        for v in box:
            problem = _value_problem(v, _Kind.NUMBER)
            if problem:
                raise DatasetError(f"{source}: {what} {i}: field 'bbox': {problem}")
    raise DatasetError(f"{source}: field 'bbox' of the {what}s cannot be read as one array")


def _check_unique(ids: np.ndarray, source: str, what: str) -> None:
    """Raise naming the first record whose ``id`` repeats an earlier one."""
    _, first = np.unique(ids, return_index=True)
    if len(first) < len(ids):
        repeat = np.ones(len(ids), dtype=bool)
        repeat[first] = False
        i = int(np.flatnonzero(repeat)[0])
        raise DatasetError(f"{source}: {what} {i}: field 'id': duplicate id {ids[i]}")


def _check_known(values: np.ndarray, known: np.ndarray, source: str, name: Callable[[int], str],
                 field: str, kind: str) -> None:
    """Raise naming the first record whose ``field`` is not among the ``known`` ids."""
    bad = ~np.isin(values, known)
    if bad.any():
        i, count = int(np.flatnonzero(bad)[0]), int(bad.sum())
        more = f" ({count} such records in all)" if count > 1 else ""
        raise DatasetError(f"{source}: {name(i)}: field '{field}': {values[i]} is not the id of "
                           f"any {kind}{more}")


def _in_all(records: Sequence[Any], first: int, field: str = "bbox") -> str:
    """`` (N such records in all)`` when more records than ``first`` lack ``field``."""
    count = sum(1 for r in records[first:] if isinstance(r, Mapping) and field not in r)
    return f" ({count} such records in all)" if count > 1 else ""


def _map_labels(labels: np.ndarray, label_to_category: Mapping[int, int], source: str,
                name: Callable[[int], str], field: str) -> np.ndarray:
    """Contiguous detector labels -> dataset category ids through ``label_to_category``."""
    keys = np.array(sorted(int(k) for k in label_to_category), dtype=np.int64)
    values = np.array([int(label_to_category[k]) for k in sorted(label_to_category)],
                      dtype=np.int64)
    pos = np.searchsorted(keys, labels).clip(max=max(len(keys) - 1, 0))
    bad = (keys[pos] != labels) if len(keys) else np.ones(len(labels), dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetError(f"{source}: {name(i)}: field '{field}': label {labels[i]} is not in "
                           "label_to_category")
    return values[pos]
