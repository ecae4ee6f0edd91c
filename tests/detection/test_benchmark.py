"""Smoke test of the faster-rcnn benchmark at a tiny size: it trains, evaluates, reports JSON."""

import json

from visionkit.benchmarks import BENCHMARKS
from visionkit.benchmarks.detection import run


def test_faster_rcnn_benchmark_smoke(tmp_path):
    assert BENCHMARKS["faster-rcnn"] == "visionkit.benchmarks.detection"
    result = run(["--size", "64", "--model-size", "64", "--n-train", "4", "--n-val", "2",
                  "--epochs", "1", "--val-every", "1", "--keep", str(tmp_path)])
    json.dumps(result)  # JSON-ready
    assert result["data"]["n_train"] == 4 and len(result["history"]) == 1
    for key in ("val_map", "val_map50", "val_map75"):  # the figures are the last validation's
        assert result[key] == result["history"][-1][key], key
    assert result["passed"] is (result["val_map50"] >= 0.8)
    assert (tmp_path / "data" / "train.json").is_file()
