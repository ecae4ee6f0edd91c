"""The detect-latency suite at a tiny size: both detectors timed per stage, detections compared."""

import json

from visionkit.benchmarks import BENCHMARKS
from visionkit.benchmarks.detect_latency import run


def test_detect_latency_reports_stages_and_parity():
    assert BENCHMARKS["detect-latency"] == "visionkit.benchmarks.detect_latency"
    result = run(["--models", "fasterrcnn_mobilenet_v3_large_fpn:128", "--images", "1", "--height", "96",
                  "--width", "128", "--repeats", "1", "--warmup", "0"])
    json.dumps(result)
    (entry,) = result["results"]
    assert entry["same_detections"] is True and entry["inference_feature_error"] < 1e-3
    assert entry["ours_s"] > 0 and entry["torchvision_s"] > 0
    assert set(entry["stages"]) == {"transform", "backbone", "rpn", "roi_heads"}
    assert all(v["ours"] > 0 and v["ours_inference"] > 0 and v["torchvision"] > 0
               for v in entry["stages"].values())
