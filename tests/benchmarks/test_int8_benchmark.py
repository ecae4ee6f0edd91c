"""`visionkit benchmark int8` on the demo models: every runner scored and timed, int8 beside fp32."""

import json

import pytest

from visionkit.benchmarks.int8 import run
from visionkit.data.synthetic import SHAPES, make_shapes_classification
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.demo.weights import CLASSIFIER_CLASSES
from visionkit.models.weights import REPO_WEIGHTS

pytest.importorskip("onnxruntime")
RUNNERS = {"pytorch_fp32", "onnxruntime_fp32", "onnxruntime_int8"}


def test_classifier_accuracy_and_latency_of_each_runner(tmp_path):
    data = make_shapes_classification(tmp_path / "data", CLASSIFIER_CLASSES, n_train=4, n_val=3,
                                      size=64, seed=5)
    result = run(["--ckpt", str(REPO_WEIGHTS / "demo_shapes_classifier.ckpt"), "--calib",
                  str(data / "train"), "--val", str(data / "val"), "--batch-sizes", "1,4",
                  "--latency-images", "4", "--repeats", "1"])
    assert result["task"] == "classification" and result["val_images"] == 12
    assert set(result["accuracy"]) == RUNNERS
    assert result["accuracy"]["pytorch_fp32"] == result["accuracy"]["onnxruntime_fp32"] > 0.5
    for size in ("batch1", "batch4"):
        assert set(result["latency_s"][size]) == RUNNERS and min(result["latency_s"][size].values()) > 0
        assert set(result["ratio"][size]) == {"int8_over_onnxruntime_fp32", "int8_over_pytorch_fp32"}
    assert result["file_bytes"]["onnxruntime_int8"] < result["file_bytes"]["onnxruntime_fp32"]
    json.dumps(result)


def test_detector_map_and_latency_of_each_runner(tmp_path):
    scenes = make_shapes_detection(tmp_path / "scenes", SHAPES[:3], n_train=4, n_val=3, size=256,
                                   max_objects=4, seed=9)
    result = run(["--ckpt", str(REPO_WEIGHTS / "demo_shapes_detector.ckpt"), "--calib",
                  str(scenes / "train.json"), "--val-json", str(scenes / "val.json"),
                  "--latency-images", "2", "--repeats", "1"])
    assert result["task"] == "detection" and result["val_images"] == 3
    assert set(result["map"]) == RUNNERS == set(result["latency_s"])
    assert result["map"]["pytorch_fp32"] == pytest.approx(result["map"]["onnxruntime_fp32"], abs=0.01)
    assert result["int8"]["scope"] == "backbone, FPN, RPN head"
    json.dumps(result)
