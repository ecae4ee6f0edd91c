"""`visionkit evaluate` / tools/evaluate.py on the real fixture: table, metrics.json, PNGs."""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import sys
from pathlib import Path

import pytest

from visionkit import cli
from visionkit.commands.evaluate import main

REPO = Path(__file__).resolve().parents[2]
FIGURES = ("pr_curve_iou50.png", "pr_curve_iou75.png", "pr_curve_iou50-95.png", "class_ap.png")


@pytest.fixture
def fixture_files(shared_data: Path) -> tuple[Path, Path]:
    d = shared_data / "coco_eval_fixture"
    return d / "instances_val2014_100.json", d / "instances_val2014_fakebbox100_results.json"


def _pycocotools_summary(gt: Path, pred: Path) -> list[str]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt))
        ev = COCOeval(coco, coco.loadRes(str(pred)), "bbox")
        ev.evaluate()
        ev.accumulate()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        ev.summarize()
    return out.getvalue().splitlines()


def test_writes_table_metrics_and_figures(fixture_files: tuple[Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    gt, pred = fixture_files
    assert main(["--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "report")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:12] == _pycocotools_summary(gt, pred)
    assert lines[13].split() == ["category", "AP", "AP50"]
    assert lines[14].split() == ["suitcase", "0.900", "1.000"]  # best class first
    assert lines[-1] == f"wrote metrics.json, {', '.join(FIGURES)} to {tmp_path / 'report'}/"

    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["gt"] == str(gt) and metrics["backend"] == "fast"
    assert metrics["stats"]["AP"] == pytest.approx(0.5045806987249628, abs=1e-12)
    per_class = {row["name"]: row for row in metrics["per_class"]}
    assert len(per_class) == 80 and per_class["toaster"]["AP"] is None
    for name in FIGURES:
        data = (tmp_path / "report" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_default_out_dir_and_tools_wrapper(fixture_files: tuple[Path, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    gt, pred = fixture_files
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["tools/evaluate.py", "--gt", str(gt), "--pred", str(pred),
                                      "--backend", "pycocotools"])
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(io.StringIO()):
        runpy.run_path(str(REPO / "tools" / "evaluate.py"), run_name="__main__")
    assert exit_info.value.code == 0
    out = tmp_path / "runs" / "evaluate" / pred.stem
    assert json.loads((out / "metrics.json").read_text())["backend"] == "pycocotools"


def test_bad_results_give_a_one_line_error(fixture_files: tuple[Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    gt, _ = fixture_files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 42, "category_id": 1, "bbox": [1, 2, 3],
                                "score": 0.5}]))
    assert cli.main(["evaluate", "--gt", str(gt), "--pred", str(bad),
                     "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("visionkit evaluate: error: ") and "bad.json: result 0: field 'bbox'" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("records, expected", [
    ([{"image_id": 42, "category_id": 1, "score": 0.5, "segmentation": [[1, 1, 5, 1, 5, 5]]}] * 3,
     "result 0: missing field 'bbox' (3 such records in all) (segmentation results: evaluate them "
     "with iou_type 'segm', --iou-type segm)"),
    ([{"image_id": 42, "category_id": 999, "score": 0.5, "bbox": [1, 2, 3, 4]}] * 50,
     "result 0: field 'category_id': 999 is not the id of any category in"),
])
def test_bad_records_are_counted_and_hinted(records, expected, fixture_files, tmp_path, capsys):
    gt, _ = fixture_files
    image_id = json.loads(gt.read_text())["images"][0]["id"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([dict(r, image_id=image_id) for r in records]))
    assert cli.main(["evaluate", "--gt", str(gt), "--pred", str(bad), "--out", str(tmp_path / "o")]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert expected in line
    assert "(50 such records in all)" in line or len(records) != 50


def test_empty_results_are_evaluated_and_said_to_be_empty(fixture_files, tmp_path, capsys):
    gt, _ = fixture_files
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert cli.main(["evaluate", "--gt", str(gt), "--pred", str(empty), "--out", str(tmp_path / "o")]) == 0
    assert f"note: {empty} holds no detections, so every AP and AR is 0" in capsys.readouterr().err
