"""2-process DDP on CPU (gloo): metrics equal the single-process run's, fit completes and checkpoints.

Each command runs as a subprocess from the repository root, as a user would start it; Lightning's
DDP launcher starts rank 1 by re-running that command. The validation sets are deliberately not
divisible by the world size: Lightning's default `DistributedSampler` pads the last share with a
repeated image, which must not count twice.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from tests.tasks._processes import DDP, run_command
from tests.tiny import tiny_faster_rcnn_args
from visionkit.checkpoint_record import read_record
from visionkit.data.synthetic import make_shapes_classification
from visionkit.data.synthetic_detection import make_shapes_detection

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="this torch build has no torch.distributed gloo backend: CPU DDP cannot run")

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 150  # a collective reached by one rank only hangs: fail instead of blocking CI
COMMON = ["--trainer.accelerator", "cpu", "--trainer.max_epochs", "1", "--data.num_workers", "0",
          "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
          "--trainer.log_every_n_steps", "1"]
CLASSIFY = ["classify", "--config", "configs/classify/resnet18_finetune.yaml",
            "--data.image_size", "32", "--data.batch_size", "4"]
DETECT = ["detect", "--config", "configs/detect/fasterrcnn_resnet18_fpn.yaml",
          "--data.batch_size", "2", "--trainer.num_sanity_val_steps", "0",
          *tiny_faster_rcnn_args(box_score_thresh=0.0)]  # all kept: non-zero mAP after one epoch
FAST_RCNN = ["detect", "--config", "configs/detect/fast_rcnn_resnet18.yaml", "--data.batch_size", "2",
             "--data.proposal_workers", "0", "--trainer.num_sanity_val_steps", "0", "--model.fast_rcnn",
             json.dumps({"min_size": 64, "max_size": 64, "roi_pool": "align", "representation_size": 32,
                         "proposals": {"max_proposals": 200}})]


def run(task: list[str], command: str, out: Path, *extra: str) -> Path:
    """Run ``visionkit <task> <command>`` (flags after --config win) and return its version_0."""
    return run_with_output(task, command, out, *extra)[0]


def run_with_output(task: list[str], command: str, out: Path, *extra: str) -> tuple[Path, str]:
    """`run`, and what the command printed."""
    args = [sys.executable, "-m", "visionkit.cli", task[0], command, *task[1:], *COMMON,
            "--trainer.default_root_dir", str(out), *extra]
    output = run_command(args, REPO, TIMEOUT_S)
    assert [p.name for p in out.iterdir()] == ["version_0"], "one run folder, written by rank 0"
    return out / "version_0", output


def logged(run_dir: Path, *keys: str) -> dict[str, float]:
    """The last logged value of each key in ``run_dir/metrics.csv``."""
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get(keys[0])]
    assert rows, f"{keys[0]} not logged in {run_dir / 'metrics.csv'}"
    return {k: float(rows[-1][k]) for k in keys}


def checkpoint(run_dir: Path, name: str) -> dict:
    path = run_dir / "checkpoints" / f"{name}.ckpt"
    assert path.is_file(), f"{path} not written"
    return torch.load(path, weights_only=True)


# --- classification -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> dict[str, Path]:
    """Two folders of the same 3 classes: 9 val images (odd) and 12 (even)."""
    return {"odd": make_shapes_classification(tmp_path_factory.mktemp("odd"), n_train=8, n_val=3,
                                              size=32),
            "even": make_shapes_classification(tmp_path_factory.mktemp("even"), n_train=8,
                                               n_val=4, size=32)}


@pytest.fixture(scope="module")
def classifier(shapes, tmp_path_factory) -> Path:
    """best.ckpt of a 1-epoch single-process fit."""
    run_dir = run(CLASSIFY, "fit", tmp_path_factory.mktemp("cls_fit"), "--data.root",
                  str(shapes["odd"]))
    return run_dir / "checkpoints" / "best.ckpt"


@pytest.mark.parametrize("val_set", ["even", "odd"])
def test_classify_validate_under_ddp_equals_single_process(shapes, classifier, tmp_path, val_set):
    args = ("--data.root", str(shapes[val_set]), "--ckpt_path", str(classifier))
    single = logged(run(CLASSIFY, "validate", tmp_path / "one", *args), "val_acc", "val_loss")
    ddp = logged(run(CLASSIFY, "validate", tmp_path / "ddp", *args, *DDP), "val_acc", "val_loss")
    print(f"classify validate ({val_set} val set): single {single}, ddp {ddp}")
    assert ddp["val_acc"] == single["val_acc"]
    assert ddp["val_loss"] == pytest.approx(single["val_loss"], abs=1e-5)


def test_classify_fit_under_ddp_writes_checkpoints_with_metadata(shapes, tmp_path):
    from visionkit.inference.classification import load_classifier, predict_topk

    run_dir = run(CLASSIFY, "fit", tmp_path / "fit", "--data.root", str(shapes["odd"]), *DDP)
    values = logged(run_dir, "val_acc", "val_loss")
    assert values["val_loss"] > 0, values
    # The accuracy synced over both ranks is the one a single process measures with the weights.
    images = sorted((shapes["odd"] / "val").rglob("*.png"))
    rows = predict_topk(load_classifier(run_dir / "checkpoints" / "best.ckpt"), images)
    right = sum(Path(r["path"]).parent.name == r["top"][0]["class"] for r in rows)
    assert values["val_acc"] == pytest.approx(right / len(images), abs=1e-6), values
    assert (run_dir / "val_confusion_matrix.png").is_file()
    for name in ("best", "last"):
        ckpt = checkpoint(run_dir, name)
        assert ckpt["epoch"] == 0 and ckpt["state_dict"]
        record = read_record(ckpt, name, "classification")
        assert record.image_size == 32 and record.classes == ["circle", "square", "triangle"]
        loaded = load_classifier(run_dir / "checkpoints" / f"{name}.ckpt")  # weights + metadata
        assert loaded.classes == record.classes


# --- detection ----------------------------------------------------------------------------------

MAP_KEYS = ("val_map", "val_map50", "val_map75")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """8 train, 5 val images (odd); ``val_bad.json`` adds one invalid annotation."""
    root = make_shapes_detection(tmp_path_factory.mktemp("det"), ("circle", "star"), n_train=8,
                                 n_val=5, size=64, max_objects=2)
    val = json.loads((root / "val.json").read_text())
    val["annotations"].append({"id": 999, "image_id": val["images"][0]["id"],
                               "bbox": [1, 1, 0, 4], "category_id": 1})
    (root / "val_bad.json").write_text(json.dumps(val))
    return root


def detect_data(root: Path, val_json: str = "val.json") -> tuple[str, ...]:
    return ("--data.train_json", str(root / "train.json"), "--data.val_json", str(root / val_json),
            "--data.image_root", str(root))


@pytest.fixture(scope="module")
def detector(scenes, tmp_path_factory) -> Path:
    """last.ckpt of a 1-epoch single-process fit."""
    run_dir = run(DETECT, "fit", tmp_path_factory.mktemp("det_fit"), *detect_data(scenes))
    return run_dir / "checkpoints" / "last.ckpt"


def test_detect_validate_under_ddp_equals_single_process(scenes, detector, tmp_path):
    args = (*detect_data(scenes), "--ckpt_path", str(detector))
    single = logged(run(DETECT, "validate", tmp_path / "one", *args), *MAP_KEYS)
    ddp = logged(run(DETECT, "validate", tmp_path / "ddp", *args, *DDP), *MAP_KEYS)
    print(f"detect validate: single {single}, ddp {ddp}")
    assert not all(v == 0 or math.isnan(v) for v in single.values()), "a trivial comparison"
    for key in MAP_KEYS:
        assert ddp[key] == pytest.approx(single[key], abs=1e-9, nan_ok=True), key


def test_detect_fit_under_ddp_completes_and_reports_invalid_records(scenes, tmp_path):
    run_dir = run(DETECT, "fit", tmp_path / "fit", *detect_data(scenes, "val_bad.json"), *DDP)
    values = logged(run_dir, *MAP_KEYS)
    assert "annotation id 999" in (run_dir / "skipped_files.txt").read_text()
    # The mAP gathered over both ranks is the one a single process measures with the weights.
    args = (*detect_data(scenes, "val_bad.json"), "--ckpt_path", str(run_dir / "checkpoints" / "best.ckpt"))
    single = logged(run(DETECT, "validate", tmp_path / "one", *args), *MAP_KEYS)
    for key in MAP_KEYS:
        assert values[key] == pytest.approx(single[key], abs=1e-9), key
    for name in ("best", "last"):
        record = read_record(checkpoint(run_dir, name), name, "detection")
        assert record.classes == ["circle", "star"] and record.category_ids == [1, 5]
        assert record.num_classes == 3


def test_fast_rcnn_fit_under_ddp_computes_each_image_s_proposals_once(scenes, tmp_path):
    # Each rank computes its share into the shared cache (not every rank all of them).
    cache = tmp_path / "cache"
    _, output = run_with_output(FAST_RCNN, "fit", tmp_path / "fit", *detect_data(scenes),
                                "--data.proposal_cache", str(cache), *DDP)
    assert f"proposals: 13 of 13 images computed, the rest read from {cache}" in output
    assert len(list(cache.glob("*/*.npy"))) == 13  # 8 train + 5 val
