"""Detector ensembles and TTA: weighted boxes fusion, views mapped back, the command line."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from visionkit.cli import main
from visionkit.data.synthetic import SHAPES
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.errors import ConfigError
from visionkit.inference.box_fusion import weighted_boxes_fusion
from visionkit.inference.detection import EnsembleDetector
from visionkit.models.weights import REPO_WEIGHTS

DETECTOR = REPO_WEIGHTS / "demo_shapes_detector.ckpt"


def test_fusion_weights_corners_by_score_and_discounts_boxes_few_sources_found():
    boxes = torch.tensor([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60], [0, 0, 10, 10.]])
    scores = torch.tensor([0.9, 0.3, 0.8, 0.6])
    labels = torch.tensor([1, 1, 1, 2])
    fused, fused_scores, fused_labels = weighted_boxes_fusion(boxes, scores, labels, num_sources=2)
    # class 1: boxes 0 and 1 overlap (IoU 0.67) -> one box at the score-weighted mean, mean score;
    # box 2 alone (found by one of 2 sources) -> half its score; class 2 never joins class 1
    expected = {(1, 0.6): [0.5, 0, 10.5, 10], (1, 0.4): [50, 50, 60, 60],
                (2, 0.3): [0, 0, 10, 10]}
    assert len(fused) == 3
    for box, score, label in zip(fused.tolist(), fused_scores.tolist(), fused_labels.tolist()):
        key = (label, round(score, 6))
        assert key in expected, key
        torch.testing.assert_close(torch.tensor(box), torch.tensor(expected[key], dtype=torch.float32))
    assert fused_scores.tolist() == sorted(fused_scores.tolist(), reverse=True)


class FixedBox:
    """A stand-in detector: one box at the top-left corner of every image it is given."""

    def __init__(self, source: str = "a", classes=("thing",)) -> None:
        self.loaded = SimpleNamespace(classes=list(classes), category_ids=[7], source=source,
                                      class_name=lambda label: "thing", category_id=lambda label: 7)
        self.seen: list[tuple[int, int]] = []

    def __call__(self, images):
        self.seen += [im.shape[:2] for im in images]
        return [[{"bbox": [0.0, 0.0, 10.0, 10.0], "label": 1, "score": 0.8}] for _ in images]


def test_mirrored_and_scaled_views_are_mapped_back_to_the_image():
    member = FixedBox()
    ensemble = EnsembleDetector([member], flip=True, scales=[1.0, 0.5], fusion="nms", iou_threshold=0.9)
    (rows,) = ensemble([np.zeros((30, 40, 3), np.uint8)])
    assert member.seen == [(30, 40), (30, 40), (15, 20), (15, 20)]
    boxes = sorted(tuple(r["bbox"]) for r in rows)
    # as given; mirrored (x from the right edge); half size (x2); half size mirrored
    assert boxes == [(0, 0, 10, 10), (0, 0, 20, 20), (20, 0, 40, 20), (30, 0, 40, 10)]
    assert {r["category_id"] for r in rows} == {7}


def test_members_with_other_classes_are_refused_by_name():
    with pytest.raises(ConfigError, match="b.ckpt: classes/category ids differ from a.ckpt"):
        EnsembleDetector([FixedBox("a.ckpt"), FixedBox("b.ckpt", classes=("other",))])


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_shapes_detection(tmp_path_factory.mktemp("scenes"), SHAPES[:3], n_train=0, n_val=3,
                                 size=256, max_objects=4, seed=7)


def results(out):
    rows = json.loads((out / "results.json").read_text())
    return sorted((r["image_id"], r["category_id"], *r["bbox"], r["score"]) for r in rows)


def test_an_ensemble_of_one_model_twice_gives_the_model_s_detections(scenes, tmp_path):
    gt = str(scenes / "val.json")
    assert main(["detect", "predict", "--weights", str(DETECTOR), "--gt", gt, "--no-images",
                 "--num-workers", "0", "--out", str(tmp_path / "one")]) == 0
    assert main(["detect", "predict", "--weights", str(DETECTOR), str(DETECTOR), "--gt", gt,
                 "--no-images", "--num-workers", "0", "--out", str(tmp_path / "two")]) == 0
    one, two = results(tmp_path / "one"), results(tmp_path / "two")
    assert len(one) > 3
    np.testing.assert_allclose(np.array(two), np.array(one), atol=2e-3)  # rounded to 3 decimals
    assert main(["detect", "predict", "--weights", str(DETECTOR), "--gt", gt, "--no-images",
                 "--num-workers", "0", "--tta", "--scales", "0.8", "1", "--out", str(tmp_path / "tta")]) == 0
    assert results(tmp_path / "tta")  # runs, and finds the shapes
