"""Hand-built COCO edge cases, each checked against pycocotools (and by value where it's clear)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from visionkit.errors import DatasetError
from visionkit.evaluation.coco import evaluate_coco

from ._cases import both_backends, random_case


def _gt(annotations: list[dict[str, Any]], images: tuple[int, ...] = (1, 2),
        categories: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    anns = [{"id": n + 1, "iscrowd": 0, "area": a["bbox"][2] * a["bbox"][3], **a}
            for n, a in enumerate(annotations)]
    return {"images": [{"id": i} for i in images], "annotations": anns,
            "categories": [{"id": c, "name": f"c{c}"} for c in categories]}


def _det(image_id: int, bbox: list[float], score: float, category_id: int = 1) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def test_score_ties_across_images_are_broken_by_image_id() -> None:
    """Equal scores: pycocotools' stable sort keeps image order; here the FP comes first.
    (Precision 1 reads as 1 / (1 + eps) in pycocotools, hence approx below.)"""
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50]},
              {"image_id": 2, "category_id": 1, "bbox": [0, 0, 50, 50]}])
    fp_first = [_det(2, [0, 0, 50, 50], 0.5), _det(1, [100, 100, 50, 50], 0.5)]
    fast, _ = both_backends(gt, fp_first)
    assert fast.stats["AP50"] == pytest.approx(51 * 0.5 / 101)
    gt["images"].reverse()  # image order in the file does not matter, ids do
    assert both_backends(gt, fp_first[::-1])[0].stats["AP50"] == fast.stats["AP50"]


def test_score_ties_within_an_image_keep_file_order() -> None:
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50]}])
    dets = [_det(1, [0, 0, 50, 50], 0.5), _det(1, [15, 15, 50, 50], 0.5)]  # a hit, a miss
    first, _ = both_backends(gt, dets)
    second, _ = both_backends(gt, dets[::-1])
    assert first.stats["AP50"] == pytest.approx(1.0) and second.stats["AP50"] == 0.5


def test_crowd_region_absorbs_many_detections() -> None:
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40]},
              {"image_id": 1, "category_id": 1, "bbox": [100, 100, 200, 200], "iscrowd": 1}])
    dets = [_det(1, [0, 0, 40, 40], 0.9)] + [
        _det(1, [100 + 20 * i, 100 + 20 * i, 50, 50], 0.8 - 0.1 * i) for i in range(4)]
    fast, _ = both_backends(gt, dets)
    assert fast.stats["AP"] == pytest.approx(1.0)  # the crowd's detections are ignored, not false positives


def test_category_without_gt_and_image_without_detections() -> None:
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40]},
              {"image_id": 2, "category_id": 1, "bbox": [0, 0, 40, 40]}], categories=(1, 2, 3))
    fast, _ = both_backends(gt, [_det(1, [0, 0, 40, 40], 0.9), _det(1, [0, 0, 40, 40], 0.9, 2)])
    assert np.isnan(fast.per_class[1]["AP"]) and np.isnan(fast.per_class[2]["AP"])
    assert (fast.precision[:, :, 1:] == -1).all()
    assert fast.stats["AR100"] == pytest.approx(0.5)


def test_zero_area_boxes() -> None:
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [10, 10, 0, 30]},
              {"image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20]}])
    both_backends(gt, [_det(1, [10, 10, 0, 30], 0.9), _det(1, [50, 50, 0, 0], 0.8),
                       _det(1, [50, 50, 20, 20], 0.7)])


def test_more_than_100_detections_in_one_image_and_category() -> None:
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40]}])
    dets = [_det(1, [200 + i, 200, 30, 30], 0.9) for i in range(100)]
    dets.append(_det(1, [0, 0, 40, 40], 0.5))  # the 101st: cut by maxDets=100
    fast, _ = both_backends(gt, dets)
    assert fast.stats["AR100"] == 0.0


def test_results_and_ground_truth_may_be_empty() -> None:
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40]}])
    fast, _ = both_backends(gt, [])
    assert fast.stats["AP"] == 0.0
    fast, _ = both_backends(_gt([]), [_det(1, [0, 0, 40, 40], 0.9)])
    assert set(fast.stats.values()) == {-1.0}


def test_annotation_id_zero_behaves_as_in_pycocotools() -> None:
    """pycocotools stores matches by annotation id and tests them for truth: id 0 is 'no match'."""
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40]}])
    gt["annotations"][0]["id"] = 0
    with pytest.warns(UserWarning, match="annotation 0 has id 0"):
        fast, _ = both_backends(gt, [_det(1, [0, 0, 40, 40], 0.9)])
    assert fast.stats["AP"] == 0.0


def test_detection_on_an_image_absent_from_gt_is_an_error() -> None:
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40]}])
    with pytest.raises(DatasetError, match="result 1: field 'image_id': 7 is not the id of any"):
        evaluate_coco(gt, [_det(1, [0, 0, 40, 40], 0.9), _det(7, [0, 0, 40, 40], 0.9)])


def test_area_field_not_the_box_decides_the_gt_area_range() -> None:
    gt = _gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 500.0}])
    fast, _ = both_backends(gt, [_det(1, [0, 0, 40, 40], 0.9)])
    assert fast.stats["APs"] == pytest.approx(1.0) and fast.stats["APm"] == -1.0


@pytest.mark.parametrize("seed", [0, 3])
def test_per_image_tensors_with_label_map_equal_the_results_list(seed: int) -> None:
    """Detector outputs (xyxy tensors, contiguous labels) give the results list's stats."""
    gt, results = random_case(seed)  # integer boxes: xyxy <-> xywh is exact
    cat_ids = [c["id"] for c in gt["categories"]]
    label_to_category = {i + 1: c for i, c in enumerate(cat_ids)}
    per_image: dict[int, dict[str, torch.Tensor]] = {}
    for img in gt["images"]:
        rs = [r for r in results if r["image_id"] == img["id"]]
        xywh = torch.tensor([r["bbox"] for r in rs], dtype=torch.float64).reshape(-1, 4)
        per_image[img["id"]] = {
            "boxes": torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1).float(),
            "labels": torch.tensor([cat_ids.index(r["category_id"]) + 1 for r in rs],
                                   dtype=torch.int64),
            "scores": torch.tensor([r["score"] for r in rs], dtype=torch.float64)}
    fast, _ = both_backends(gt, per_image, label_to_category=label_to_category)
    assert fast.stats == evaluate_coco(gt, results).stats
