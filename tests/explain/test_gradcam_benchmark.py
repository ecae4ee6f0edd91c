"""The Grad-CAM localisation benchmark at a tiny size: box recording, hit test, JSON, example sheet."""

from __future__ import annotations

import numpy as np
import pytest

from visionkit.benchmarks.gradcam import example_sheet, heldout_set, inside, peaks, run
from visionkit.inference.classification import load_classifier


def test_heldout_boxes_are_tight_around_the_drawn_shape():
    for image, _, box in heldout_set(["circle", "square", "triangle"], 4, 64, seed=3):
        corners = np.concatenate([image[:3, :3], image[:3, -3:], image[-3:, :3], image[-3:, -3:]])
        background = np.median(corners.reshape(-1, 3), 0)
        ys, xs = np.nonzero((np.abs(image - background) > 50).all(-1))  # solid shape pixels
        x1, y1, x2, y2 = box
        assert x1 <= xs.min() and xs.max() < x2 and y1 <= ys.min() and ys.max() < y2
        assert xs.min() - x1 <= 2 and x2 - 1 - xs.max() <= 2 and ys.min() - y1 <= 2 and y2 - 1 - ys.max() <= 2


def test_peaks_and_hits():
    import torch

    maps = torch.zeros(2, 8, 8)
    maps[0, 2, 5] = 1
    maps[1, 7, 0] = 1
    points = peaks(maps)
    assert points.tolist() == [[5.5, 2.5], [0.5, 7.5]]
    boxes = np.array([[5, 2, 6, 3], [1, 0, 8, 8]], np.float32)
    assert inside(points, boxes).tolist() == [True, False]


@pytest.mark.slow
def test_benchmark_small_run(tmp_path):
    sheet = tmp_path / "sheet.png"
    result = run(["--size", "48", "--n-train", "4", "--n-val", "2", "--n-test", "3", "--epochs", "1",
                  "--examples", str(sheet), "--save-checkpoint", str(tmp_path / "best.ckpt")])
    assert load_classifier(tmp_path / "best.ckpt").classes == ["circle", "cross", "ring"]
    assert result["heldout_images"] == 9 and result["classes"] == ["circle", "cross", "ring"]
    entries = {(r["method"], r["layer"], r["cells"]) for r in result["results"]}
    assert entries == {(m, f"backbone.net.layer{i}", cells) for m in ("gradcam", "gradcam++")
                       for i, cells in ((4, "2x2"), (3, "3x3"))}
    assert all(0 <= r["peak_in_box"] <= 1 for r in result["results"])
    assert 0 < result["baselines"]["random_pixel_in_box"] < 1
    assert sheet.stat().st_size > 1000


def test_example_sheet_tiles_captions_of_any_length():
    samples = heldout_set(["circle", "square", "triangle"], 2, 40, seed=0)
    heatmaps = np.random.default_rng(0).random((6, 40, 40))
    sheet = example_sheet(samples, heatmaps, ["circle", "square", "a-much-longer-class-name"], 6)
    assert sheet.shape[1] == 4 * 80 + 3 * 4 and sheet.dtype == np.uint8  # 4 columns, 2x enlarged
