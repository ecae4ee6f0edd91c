"""`tools/benchmark.py ops` on tiny inputs: JSON shape, registration and agreement."""

from __future__ import annotations

import json

import torch

from visionkit.benchmarks import BENCHMARKS
from visionkit.benchmarks.ops import run
from visionkit.commands.benchmark import main

TINY = ["--repeats", "1", "--warmup", "0", "--nms-boxes", "300", "--nms-classes", "5",
        "--iou-boxes", "40", "--rois", "20", "--feature", "8x10x12"]


def test_run_reports_each_case_next_to_torchvision():
    threads = torch.get_num_threads()
    result = run(TINY)
    assert torch.get_num_threads() == threads
    assert set(result["results"]) == {"batched_nms", "box_iou", "roi_align", "roi_pool"}
    for case in result["results"].values():
        assert case["ours_ms"] > 0 and case["torchvision_ms"] > 0
        assert case["ratio"] > 0 and case["same_result"] is True
    assert result["threads"] == 1 and result["device"] == "cpu"
    json.dumps(result)


def test_registered_and_dispatched(capsys):
    assert BENCHMARKS["ops"] == "visionkit.benchmarks.ops"
    assert main(["ops", *TINY]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["benchmark"] == "ops"
