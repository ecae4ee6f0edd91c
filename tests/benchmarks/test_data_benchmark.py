"""The data suite on the real ants/bees folder at a small size: both pipelines run, rates reported."""

import json

from visionkit.benchmarks import BENCHMARKS
from visionkit.benchmarks.data_pipeline import run


def test_data_benchmark_compares_both_pipelines(shared_data):
    assert BENCHMARKS["data"] == "visionkit.benchmarks.data_pipeline"
    result = run(["--root", str(shared_data / "hymenoptera" / "val"), "--size", "64", "--batch-size", "16",
                  "--num-workers", "0", "--rounds", "1"])
    json.dumps(result)
    assert result["output_shape"] == {"ours": [3, 64, 64], "torchvision": [3, 64, 64]}
    assert result["images"] > 100 and result["ratio"] > 0
    assert set(result["images_per_s"]) == {"ours", "torchvision"}
