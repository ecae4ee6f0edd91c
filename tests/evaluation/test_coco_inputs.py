"""Input validation: every bad input raises a clear error naming file, record and field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from visionkit.errors import ConfigError, DatasetError
from visionkit.evaluation.coco import evaluate_coco

from ._cases import random_case


@pytest.fixture
def case() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    gt, results = random_case(1)
    assert len(results) > 5
    return gt, results


def _write(tmp_path: Path, name: str, obj: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize(("field", "value", "message"), [
    ("image_id", 123456, "field 'image_id': 123456 is not the id of any image in"),
    ("category_id", 4242, "field 'category_id': 4242 is not the id of any category in"),
    ("bbox", [1.0, 2.0, 3.0], r"field 'bbox': expected 4 numbers \[x, y, width, height\]"),
    ("bbox", [1.0, 2.0, "3", 4.0], "field 'bbox': expected a number, got '3'"),
    ("score", math.nan, "field 'score': expected a finite number, got nan"),
    ("score", "high", "field 'score': expected a number, got 'high'"),
    ("image_id", 1.5, "field 'image_id': expected an integer, got 1.5"),
])
def test_bad_result_record_names_file_index_and_field(
        tmp_path: Path, case: tuple, field: str, value: Any, message: str) -> None:
    gt, results = case
    results[4][field] = value
    path = _write(tmp_path, "preds.json", results)
    with pytest.raises(DatasetError, match=rf"preds\.json: result 4: {message}"):
        evaluate_coco(gt, path)


def test_missing_field_and_non_object_records(tmp_path: Path, case: tuple) -> None:
    gt, results = case
    del results[2]["score"]
    with pytest.raises(DatasetError, match="preds.json: result 2: missing field 'score'"):
        evaluate_coco(gt, _write(tmp_path, "preds.json", results))
    with pytest.raises(DatasetError, match="result 0: expected an object, got list"):
        evaluate_coco(gt, [[1, 2, 3]])


def test_unreadable_files(tmp_path: Path, case: tuple) -> None:
    gt, _ = case
    with pytest.raises(DatasetError, match="nope.json: file not found"):
        evaluate_coco(gt, tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(DatasetError, match="bad.json: not valid JSON"):
        evaluate_coco(gt, tmp_path / "bad.json")
    with pytest.raises(DatasetError, match="obj.json: expected a JSON list of COCO results"):
        evaluate_coco(gt, _write(tmp_path, "obj.json", {"annotations": []}))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda gt: gt["annotations"][3].update(id=gt["annotations"][1]["id"]),
     "annotation 3: field 'id': duplicate id"),
    (lambda gt: gt["annotations"][2].update(image_id=99999),
     "annotation 2: field 'image_id': 99999 is not the id of any image"),
    (lambda gt: gt["annotations"][2].update(bbox=[0, 0, math.inf, 1]),
     "annotation 2: field 'bbox': expected a finite number, got inf"),
    (lambda gt: gt["images"].append(dict(gt["images"][0])), "image .*: field 'id': duplicate id"),
    (lambda gt: gt.pop("categories"), "missing list field 'categories'"),
])
def test_bad_ground_truth(tmp_path: Path, case: tuple, edit: Any, message: str) -> None:
    gt, results = case
    edit(gt)
    with pytest.raises(DatasetError, match=rf"gt\.json: {message}"):
        evaluate_coco(_write(tmp_path, "gt.json", gt), results)


def test_ground_truth_defaults_and_pycocotools_input(case: tuple) -> None:
    """iscrowd defaults to 0 and area to w*h; a pycocotools COCO is accepted as is."""
    from pycocotools.coco import COCO

    gt, results = case
    for a in gt["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3]
        a["iscrowd"] = 0
    expected = evaluate_coco(gt, results).stats
    bare = {**gt, "annotations": [{k: v for k, v in a.items() if k not in ("area", "iscrowd")}
                                  for a in gt["annotations"]]}
    assert evaluate_coco(bare, results, backend="pycocotools").stats == expected
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    assert evaluate_coco(coco, results).stats == expected


def test_bad_per_image_tensors(case: tuple) -> None:
    gt, _ = case
    image = gt["images"][0]["id"]
    good = {"boxes": torch.zeros(2, 4), "labels": torch.ones(2, dtype=torch.long),
            "scores": torch.ones(2)}
    with pytest.raises(DatasetError, match=rf"image {image}: field 'boxes': expected shape"):
        evaluate_coco(gt, {image: {**good, "boxes": torch.zeros(2, 5)}})
    with pytest.raises(DatasetError, match=rf"image {image} detection 1: field 'scores': "
                                           "expected finite numbers, got nan"):
        evaluate_coco(gt, {image: {**good, "scores": torch.tensor([0.5, math.nan])}})
    with pytest.raises(DatasetError, match=rf"image {image}: field 'labels': expected 2 integers"):
        evaluate_coco(gt, {image: {**good, "labels": torch.ones(3, dtype=torch.long)}})
    with pytest.raises(DatasetError, match=rf"image {image}: missing field 'scores'"):
        evaluate_coco(gt, {image: {"boxes": good["boxes"], "labels": good["labels"]}})
    with pytest.raises(DatasetError, match=rf"image {image} detection 0: field 'labels': label 1 "
                                           "is not in label_to_category"):
        evaluate_coco(gt, {image: good}, label_to_category={2: gt["categories"][0]["id"]})


def test_bad_options(case: tuple) -> None:
    gt, results = case
    with pytest.raises(ConfigError, match="iou_type"):
        evaluate_coco(gt, results, iou_type="keypoints")
    with pytest.raises(ConfigError, match="backend"):
        evaluate_coco(gt, results, backend="slow")
