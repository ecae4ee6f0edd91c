"""Both backends on the real fixtures in ../shared/data (skipped when the folder is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from visionkit.evaluation.coco import evaluate_coco

from ._cases import STATS_ATOL, both_backends, detections_from_gt

FIXTURE = "coco_eval_fixture"
GT = "instances_val2014_100.json"


def _expected(shared_data: Path, iou_type: str) -> dict[str, float]:
    path = shared_data / FIXTURE / "expected_stats_pycocotools.json"
    return json.loads(path.read_text())[iou_type]["stats"]


def test_fixture_bbox_equals_pycocotools_and_the_expected_stats(shared_data: Path) -> None:
    d = shared_data / FIXTURE
    fast, ref = both_backends(d / GT, d / "instances_val2014_fakebbox100_results.json")
    for name, value in _expected(shared_data, "bbox").items():
        assert abs(fast.stats[name] - value) <= STATS_ATOL, name
        assert abs(ref.stats[name] - value) <= STATS_ATOL, name
    assert fast.backend == "fast"


def test_fixture_segm_runs_through_pycocotools(shared_data: Path) -> None:
    d = shared_data / FIXTURE
    result = evaluate_coco(d / GT, d / "instances_val2014_fakesegm100_results.json",
                           iou_type="segm")
    assert result.backend == "pycocotools"
    for name, value in _expected(shared_data, "segm").items():
        assert abs(result.stats[name] - value) <= STATS_ATOL, name


@pytest.mark.parametrize("dataset", ["bccd/val.json", "bccd/test.json", "raccoon/val.json"])
def test_real_ground_truth_with_jittered_detections(shared_data: Path, dataset: str) -> None:
    gt = json.loads((shared_data / dataset).read_text())
    fast, _ = both_backends(gt, detections_from_gt(gt, seed=0))
    assert 0.2 < fast.stats["AP50"] < 1.0
