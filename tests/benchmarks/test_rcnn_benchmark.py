"""Smoke test of the rcnn benchmark at a tiny size: both detectors train, are scored and timed."""

import json

from visionkit.benchmarks import BENCHMARKS
from visionkit.benchmarks.rcnn import run


def test_rcnn_benchmark_smoke(tmp_path):
    assert BENCHMARKS["rcnn"] == "visionkit.benchmarks.rcnn"
    result = run(["--size", "64", "--model-size", "64", "--warp-size", "32", "--n-train", "4",
                  "--n-val", "2", "--epochs", "1", "--rcnn-epochs", "1", "--val-every", "1",
                  "--time-images", "2", "--keep", str(tmp_path)])
    json.dumps(result)
    for kind in ("fast_rcnn", "rcnn"):
        history = result[kind]["history"]
        assert len(history) == 1 and result[kind]["val_map50"] == history[-1]["val_map50"]
        assert result["inference"][kind]["images"] == 2
    assert result["inference"]["fast_rcnn_speedup"] > 0
    assert result["proposals"]["computed_images"] == 6
    assert result["proposals"]["val_recall"]["num_boxes"] > 0
    assert len(list((tmp_path / "data" / "proposals").glob("*/*.npy"))) == 6
