"""`visionkit summary` and `visionkit explain gradcam` end to end, and the tools/ wrappers."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.tiny import tiny_faster_rcnn
from visionkit.cli import main
from visionkit.explain.overlay import write_png
from visionkit.inference.summary_targets import summary_target

from ._helpers import write_checkpoint

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "shapes.ckpt", size=48)


def test_summary_json_csv_table_and_plot(tmp_path, capsys):
    assert main(["summary", "resnet18", "--input", "3x64x64", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["layers"][0]) == {"name", "type", "output_shape", "params", "macs",
                                      "activation_bytes", "rf", "jump", "start"}
    assert data["totals"]["params"] == 11_689_512 == sum(r["params"] for r in data["layers"])
    assert data["input_shapes"] == [[1, 3, 64, 64]]

    out = tmp_path / "summary.csv"
    assert main(["summary", "resnet18", "--input", "3x64x64", "--format", "csv", "--out", str(out)]) == 0
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert table[0]["output_shape"] == "1x64x32x32" and table[-1]["name"] == "total"
    assert int(table[-1]["macs"]) == data["totals"]["macs"]

    png = tmp_path / "summary.png"
    assert main(["summary", "alexnet", "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "backbone.net.features.12" in text and "61,100,840 parameters" in text
    assert png.stat().st_size > 10_000


def test_summary_of_a_checkpoint_uses_its_input_size(checkpoint, capsys):
    assert main(["summary", str(checkpoint), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_shapes"] == [[1, 3, 48, 48]]


def test_summary_of_a_detection_checkpoint_runs_at_its_min_size(capsys):
    from visionkit.inference.detector_loading import load_detector

    ckpt = Path(__file__).resolve().parents[2] / "weights" / "demo_shapes_detector.ckpt"
    assert main(["summary", str(ckpt), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    model = load_detector(ckpt).model
    side = model.transform.min_size[-1]
    assert any(shape[-2:] == [side, side] for shape in summary["input_shapes"]), summary["input_shapes"]
    assert summary["totals"]["params"] + summary["unused_params"] == sum(
        p.numel() for p in model.parameters())


def test_detector_names_are_summary_targets_with_image_list_input():
    target = summary_target("fasterrcnn_mobilenet_v3_large_fpn")
    assert target.detector and target.default_shape == (3, 800, 800)
    (image,) = target.example((3, 60, 80))
    assert image.shape == (3, 60, 80) and 0 <= image.min() and image.max() <= 1
    assert summary_target("resnet18").example().device.type == "meta"


@pytest.mark.parametrize(("args", "message"), [
    (["nonsense"], "neither a checkpoint file nor a backbone"),
    (["resnet18", "--input", "3x0"], "expected CxHxW"),
    (["resnet18", "--input", "224x224"], "--input 224x224: resnet18 cannot run on this input ("),
    (["inception_v3", "--input", "3x64x64"], "--input 3x64x64: inception_v3 cannot run on this input (")])
def test_summary_errors_are_one_line(args, message, capsys):
    assert main(["summary", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_explain_gradcam_writes_overlays_and_an_index(checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = [write_png(tmp_path / "in" / f"{name}.png", rng.integers(0, 256, (40, 56, 3), np.uint8))
              for name in ("a", "b")]
    out = tmp_path / "cams"
    assert main(["explain", "gradcam", "--ckpt", str(checkpoint), "--source", *map(str, images),
                 "--class", "square", "--method", "gradcam++", "--out", str(out)]) == 0
    rows = json.loads((out / "gradcam.json").read_text())
    assert [Path(r["png"]).name for r in rows] == ["a_gradcam.png", "b_gradcam.png"]
    assert all(r["class"] == "square" and r["layer"] == "backbone.net.layer4" for r in rows)
    assert (out / "a_gradcam.png").stat().st_size > 1000
    assert "2 heatmap(s) written" in capsys.readouterr().out

    assert main(["explain", "gradcam", "--ckpt", str(checkpoint), str(images[0]), "--class", "hexagon",
                 "--out", str(out)]) == 1
    assert "not a class of this model" in capsys.readouterr().err


def test_tool_wrappers_show_help():
    for tool, words in (("summary.py", "MODEL_OR_CKPT"), ("explain.py", "gradcam")):
        result = subprocess.run([sys.executable, str(TOOLS / tool), "--help"], capture_output=True,
                                text=True, check=True)
        assert words in result.stdout


def test_gradcam_of_a_detection_checkpoint_explains_one_box(tmp_path, capsys):
    import torch

    from visionkit.tasks.checkpoint_io import save_task_checkpoint
    from visionkit.tasks.detection import DetectionTask

    torch.manual_seed(0)
    task = DetectionTask("fasterrcnn_resnet18_fpn", 3, class_names=["a", "b"], category_ids=[3, 7],
                         faster_rcnn=tiny_faster_rcnn(box_score_thresh=0.0))
    ckpt = save_task_checkpoint(task, tmp_path / "det.ckpt")
    image = tmp_path / "scene.png"
    write_png(image, np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8))
    out = tmp_path / "cam"
    assert main(["explain", "gradcam", "--ckpt", str(ckpt), str(image), "--detection", "1",
                 "--out", str(out)]) == 0
    assert "1 heatmap(s)" in capsys.readouterr().out
    [row] = json.loads((out / "gradcam.json").read_text())
    assert row["detection"] == 1 and row["category_id"] in (3, 7) and row["class"] in ("a", "b")
    assert row["layer"].startswith("backbone.fpn.") and Path(row["png"]).stat().st_size > 1000
    x1, y1, x2, y2 = row["box"]
    assert 0 <= x1 < x2 <= 80 and 0 <= y1 < y2 <= 60

    # A rank beyond the image's detections: no heatmap, said so, and a failing exit status.
    assert main(["explain", "gradcam", "--ckpt", str(ckpt), str(image), "--detection", "999",
                 "--out", str(tmp_path / "none")]) == 1
    captured = capsys.readouterr()
    assert "0 heatmap(s)" in captured.out
    assert f"no heatmap for 1 image(s) without a detection #999 (e.g. {image} has" in captured.err
