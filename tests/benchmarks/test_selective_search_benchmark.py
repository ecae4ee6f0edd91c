"""The selective-search benchmark on one real raccoon image: timing, proposals and recall reported."""

import json

from visionkit.benchmarks import BENCHMARKS
from visionkit.benchmarks.selective_search import run


def test_selective_search_benchmark_on_real_images(shared_data):
    assert BENCHMARKS["selective-search"] == "visionkit.benchmarks.selective_search"
    result = run(["--json", str(shared_data / "raccoon" / "val.json"), "--images", "2"])
    json.dumps(result)
    assert result["images"] == 2 and result["median_s"] > 0
    assert 0 < result["mean_proposals"] <= 2000
    assert result["recall"]["0.5"][-1] == 1.0  # a raccoon photo: its box is among the proposals
    assert result["passed"] is (result["median_s"] <= 2.0)
