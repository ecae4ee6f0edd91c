"""`visionkit detect predict`: outputs, parity with the model, resume, filters, videos, errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from visionkit.cli import main
from visionkit.data.images import read_image
from visionkit.evaluation import evaluate_coco
from visionkit.inference.detection_records import read_records
from visionkit.inference.detector_loading import load_detector

QUIET = ["--num-workers", "0", "--batch-size", "4"]


def predict(*args: str) -> int:
    return main(["detect", "predict", *args])


def error_line(stderr: str) -> str:
    """The one error line of a failed command (a progress bar may share stderr)."""
    lines = [line for line in stderr.splitlines() if line.startswith("visionkit detect: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def results(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())


def test_gt_images_all_outputs_and_evaluate_accepts_them(shapes_set, detection_ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict("--weights", str(detection_ckpt), "--gt", str(shapes_set / "val.json"),
                   "--out", str(out), "--num-workers", "2") == 0
    assert "6 images" in capsys.readouterr().out
    gt = json.loads((shapes_set / "val.json").read_text())
    records = list(read_records(out / "predictions.jsonl"))
    by_file = {str(shapes_set / im["file_name"]): im["id"] for im in gt["images"]}
    assert {r["file"]: r["image_id"] for r in records} == by_file
    rows = results(out)
    assert len(rows) == sum(len(r["detections"]) for r in records) > 0
    assert {r["category_id"] for r in rows} <= {1, 5}
    evaluate_coco(gt, rows)  # accepted: ids and categories known, boxes valid
    assert main(["evaluate", "--gt", str(shapes_set / "val.json"), "--pred", str(out / "results.json"),
                 "--out", str(tmp_path / "eval")]) == 0
    assert all(round(v, 3) == v for r in rows for v in r["bbox"])  # no float noise in the JSON
    for im in gt["images"]:  # images/ holds what lies below the images' common folder
        drawn = read_image(out / "images" / Path(im["file_name"]).name)
        assert drawn.shape == (im["height"], im["width"], 3)
    with open(out / "predictions.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)


def test_detections_equal_the_model_called_directly(shapes_set, detection_ckpt, tmp_path):
    out = tmp_path / "out"
    assert predict("--weights", str(detection_ckpt), str(shapes_set / "images" / "val"), "--out",
                   str(out), "--no-images", "--num-workers", "2", "--batch-size", "4") == 0
    loaded = load_detector(detection_ckpt)
    for record in read_records(out / "predictions.jsonl"):
        image = torch.from_numpy(read_image(record["file"]).copy()).permute(2, 0, 1).float() / 255
        with torch.inference_mode():
            ref = loaded.model([image])[0]
        got = record["detections"]
        assert len(got) == len(ref["scores"])
        assert np.allclose([d["bbox"] for d in got], ref["boxes"].numpy().reshape(-1, 4), atol=1e-3)
        assert np.allclose([d["score"] for d in got], ref["scores"].numpy(), atol=1e-6)
        assert [d["category_id"] for d in got] == [[1, 5][i - 1] for i in ref["labels"].tolist()]
    assert not (out / "images").exists()


def test_resume_after_a_killed_run_gives_the_uninterrupted_results(shapes_set, detection_ckpt, tmp_path,
                                                                    capsys):
    full, cut = tmp_path / "full", tmp_path / "cut"
    args = ["--weights", str(detection_ckpt), "--gt", str(shapes_set / "val.json"), *QUIET]
    assert predict(*args, "--out", str(full)) == 0
    lines = (full / "predictions.jsonl").read_text().splitlines(keepends=True)
    cut.mkdir()
    # what a SIGKILL mid-write leaves: two complete lines and a torn third, no results.json yet
    (cut / "predictions.jsonl").write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    assert predict(*args, "--out", str(cut)) == 1
    assert "pass --resume" in capsys.readouterr().err
    assert predict(*args, "--out", str(cut), "--resume") == 0
    assert "2 done before" in capsys.readouterr().out
    assert sorted(results(cut), key=json.dumps) == sorted(results(full), key=json.dumps)
    assert len(list(read_records(cut / "predictions.jsonl"))) == len(lines)


def test_class_filter_score_threshold_and_max_detections(shapes_set, detection_ckpt, tmp_path):
    args = ["--weights", str(detection_ckpt), "--gt", str(shapes_set / "val.json"), "--no-images", *QUIET]
    assert predict(*args, "--out", str(tmp_path / "all")) == 0
    log = tmp_path / "all" / "predictions.jsonl"
    everything = {r["image_id"]: r["detections"] for r in read_records(log)}
    median = float(np.median([d["score"] for dets in everything.values() for d in dets]))
    assert predict(*args, "--out", str(tmp_path / "star"), "--classes", "star", "--score-thresh",
                   str(median)) == 0
    expected = sorted((i, d["score"]) for i, dets in everything.items() for d in dets
                      if d["category_id"] == 5 and d["score"] >= median)
    got = sorted((r["image_id"], r["score"]) for r in results(tmp_path / "star"))
    assert got == expected and got
    assert predict(*args, "--out", str(tmp_path / "top2"), "--max-det", "2") == 0
    for record in read_records(tmp_path / "top2" / "predictions.jsonl"):
        assert record["detections"] == everything[record["image_id"]][:2]


def test_unreadable_image_stops_or_is_skipped_and_reported(shapes_set, detection_ckpt, tmp_path, capsys):
    folder = tmp_path / "imgs"
    shutil.copytree(shapes_set / "images" / "val", folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert predict("--weights", str(detection_ckpt), str(folder), "--out", str(tmp_path / "a"),
                   *QUIET) == 1
    err = error_line(capsys.readouterr().err)
    assert "broken.png" in err and "--skip-invalid" in err
    assert predict("--weights", str(detection_ckpt), str(folder), "--out", str(tmp_path / "b"),
                   "--skip-invalid", *QUIET) == 0
    assert "1 unreadable left out" in capsys.readouterr().out
    assert "broken.png" in (tmp_path / "b" / "skipped_files.txt").read_text()
    assert len(list(read_records(tmp_path / "b" / "predictions.jsonl"))) == 6


def test_video_in_annotated_video_out(shapes_set, detection_ckpt, tmp_path, capsys):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 64))
    frames = sorted((shapes_set / "images" / "val").glob("*.png"))
    for path in frames:
        writer.write(cv2.cvtColor(read_image(path), cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "out"
    assert predict("--weights", str(detection_ckpt), str(video), "--out", str(out), *QUIET) == 0
    assert capsys.readouterr().out.rstrip().endswith(
        "(results.json, predictions.csv, predictions.jsonl, clip.mp4)")  # no images/ claimed
    assert not (out / "images").exists()
    records = list(read_records(out / "predictions.jsonl"))
    assert [r["frame"] for r in records] == list(range(len(frames)))
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    capture.release()


@pytest.mark.parametrize("case", ["missing checkpoint", "classification checkpoint", "empty folder",
                                  "unknown model", "coco weights absent", "gt of other classes"])
def test_errors_are_one_clear_line(case, tmp_path, capsys, monkeypatch, shapes_set, detection_ckpt):
    image = str(shapes_set / "images" / "val" / "0000.png")
    if case == "gt of other classes":  # the same photos, labelled with other category ids/names
        gt = json.loads((shapes_set / "val.json").read_text())
        gt["categories"] = [{"id": 1, "name": "raccoon"}]
        gt["annotations"] = [dict(a, category_id=1) for a in gt["annotations"]]
        other = tmp_path / "raccoon.json"
        other.write_text(json.dumps(gt))
        args = ["--weights", str(detection_ckpt), "--gt", str(other), "--image-root", str(shapes_set)]
        expected = "category ids/names 1:circle, 5:star are not among"
    elif case == "missing checkpoint":
        args, expected = ["--weights", str(tmp_path / "none.ckpt"), image], "no such checkpoint"
    elif case == "classification checkpoint":
        other = tmp_path / "cls.ckpt"
        torch.save({"state_dict": {}, "visionkit": {"task": "classification"}}, other)
        args, expected = ["--weights", str(other), image], "not a detection checkpoint"
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        args, expected = ["--weights", "x.ckpt", str(tmp_path / "empty")], "holds no image files"
    elif case == "unknown model":
        args, expected = ["--weights", "coco", "--model", "yolo9", image], "unknown detector 'yolo9'"
    else:
        monkeypatch.setenv("VISIONKIT_OFFLINE", "1")
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        monkeypatch.chdir(tmp_path)
        args, expected = ["--weights", "coco", "--model", "fasterrcnn_mobilenet_v3_large_fpn", image], \
            "put fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth in"
    assert predict(*args, "--out", str(tmp_path / "out")) == 1
    assert expected in error_line(capsys.readouterr().err)
    assert not (tmp_path / "out" / "results.json").exists()
