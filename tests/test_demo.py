"""`visionkit demo`: the shipped weights detect and classify unseen shapes well; all outputs exist."""

import json

from visionkit.cli import main
from visionkit.demo.weights import CLASSIFIER_FILE, DETECTOR_FILE


def test_shipped_weights_are_small_inference_checkpoints():
    for path in (DETECTOR_FILE, CLASSIFIER_FILE):
        assert path.stat().st_size < 25 * 2**20, path
    record = json.loads((DETECTOR_FILE.parent / "demo_weights.json").read_text())
    assert record["command"] == "visionkit demo --make-weights"


def test_demo_writes_report_images_results_and_metrics(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    assert str(out / "index.md") in capsys.readouterr().out
    index = (out / "index.md").read_text()
    for name in ("detections.png", "predictions.png", "evaluate/pr_curve_iou50.png"):
        assert f"]({name})" in index and (out / name).stat().st_size > 1000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["detection"]["images"] == 24 and metrics["detection"]["AP50"] >= 0.9
    assert metrics["classification"]["accuracy"] >= 22 / 24  # fine-tuned ImageNet model (was 14/24)
    results = json.loads((out / "detect" / "results.json").read_text())
    assert len(results) == metrics["detection"]["detections"] > 0
    assert json.loads((out / "evaluate" / "metrics.json").read_text())["stats"]["AP50"] >= 0.9
    assert main(["demo", "--out", str(out)]) == 0  # `make demo` twice: the rerun replaces its output
    again = json.loads((out / "metrics.json").read_text())
    assert {k: v for k, v in again.items() if k != "seconds"} == \
        {k: v for k, v in metrics.items() if k != "seconds"}
