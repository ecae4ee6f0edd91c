"""Figures for results with few classes (named curves), many, and none."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionkit.evaluation.coco import evaluate_coco
from visionkit.evaluation.plots import plot_class_ap, plot_pr_curve

from ._cases import random_case


@pytest.mark.parametrize("seed", [2, 5])
@pytest.mark.parametrize("iou", [0.5, 0.75, None])
def test_pr_curve_and_class_ap_write_pngs(tmp_path: Path, seed: int, iou: float | None) -> None:
    result = evaluate_coco(*random_case(seed))
    for path in (plot_pr_curve(result, tmp_path / "pr.png", iou),
                 plot_class_ap(result, tmp_path / "ap.png")):
        assert path.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ap.png", "pr.png"]  # no temp files


def test_figures_without_any_ground_truth(tmp_path: Path) -> None:
    gt, _ = random_case(0)
    result = evaluate_coco({**gt, "annotations": []}, [])
    plot_pr_curve(result, tmp_path / "pr.png")
    plot_class_ap(result, tmp_path / "ap.png")
    assert (tmp_path / "pr.png").stat().st_size > 0 and (tmp_path / "ap.png").stat().st_size > 0
