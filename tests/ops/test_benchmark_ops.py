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


def test_roi_sweep_times_each_roi_size_and_reaches_past_the_map():
    from visionkit.benchmarks.ops import sweep_rois

    rois = sweep_rois(100, 25, 10, 12, 1 / 8, torch.Generator().manual_seed(0))
    sides = (rois[:, 2:] - rois[:, :2]) / 8  # [100, 2] in map cells
    assert sides.min() >= 1 and sides.max() <= 25
    assert (rois[::5, 2:] > torch.tensor([12 * 8, 10 * 8])).any(1).all()  # a fifth past the edge
    result = run([*TINY, "--roi-sweep", "4", "16"])
    sweep = result["results"]["roi_align_sweep"]
    assert [entry["max_cells"] for entry in sweep] == [4, 16]
    assert all(entry["same_result"] is True and entry["ratio"] > 0 for entry in sweep)
