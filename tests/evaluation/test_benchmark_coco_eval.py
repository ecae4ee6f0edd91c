"""The coco-eval benchmark at a tiny size: its JSON, and its registration."""

from __future__ import annotations

import pytest

from visionkit.benchmarks import BENCHMARKS, coco_eval


def test_small_run_reports_timings_speedups_and_agreement() -> None:
    out = coco_eval.run(["--images", "20", "--dets", "15", "--categories", "4"])
    assert out["data"] == {"images": 20, "detections": 300, "categories": 4, "seed": 0,
                           "gt_annotations": out["data"]["gt_annotations"]}
    assert set(out["seconds"]) == {"fast", "pycocotools", "faster_coco_eval"}
    assert all(v == 0.0 for v in out["max_abs_stat_diff_vs_pycocotools"].values())
    assert out["speedup"]["fast_vs_pycocotools"] > 0
    assert BENCHMARKS["coco-eval"] == "visionkit.benchmarks.coco_eval"


def test_faster_coco_eval_reported_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coco_eval, "_version", lambda package: None)
    out = coco_eval.run(["--images", "5", "--dets", "5", "--categories", "2",
                         "--skip", "pycocotools"])
    assert out["seconds"]["faster_coco_eval"] == "unavailable"
    assert out["speedup"] == {"fast_vs_pycocotools": None, "fast_vs_faster_coco_eval": None}


def test_synthetic_data_is_seeded() -> None:
    assert coco_eval.synthetic_coco(3, 4, 2, seed=1) == coco_eval.synthetic_coco(3, 4, 2, seed=1)
    assert coco_eval.synthetic_coco(3, 4, 2, seed=1) != coco_eval.synthetic_coco(3, 4, 2, seed=2)
