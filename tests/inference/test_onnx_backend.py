"""ONNX Runtime behind `classify predict` / `detect predict`: an exported file (or --backend
onnxruntime) gives PyTorch's predictions."""

from __future__ import annotations

import json

import pytest
import torch

from visionkit.cli import main
from visionkit.data.synthetic import SHAPES, make_shapes_classification
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.errors import ConfigError
from visionkit.inference.classification import load_classifier
from visionkit.inference.detector_loading import load_detector
from visionkit.inference.export import export_model, read_export_metadata
from visionkit.models.weights import REPO_WEIGHTS
from visionkit.tasks.checkpoint_io import save_task_checkpoint
from visionkit.tasks.classification import ClassificationTask

pytest.importorskip("onnxruntime")
DETECTOR = REPO_WEIGHTS / "demo_shapes_detector.ckpt"


def predictions(out):
    return {r["path"]: r["top"] for r in json.loads(out.read_text())}


def test_classifier_onnx_file_and_backend_predict_as_pytorch(tmp_path):
    torch.manual_seed(0)
    task = ClassificationTask("resnet18", 3, class_names=list(SHAPES[:3]), image_size=32)
    ckpt = save_task_checkpoint(task, tmp_path / "cls.ckpt")
    onnx = export_model(ckpt, "onnx", tmp_path / "cls.onnx")
    root = make_shapes_classification(tmp_path / "data", SHAPES[:3], n_train=0, n_val=2, size=48)
    runs = {"pytorch": ["--ckpt", str(ckpt)], "file": ["--ckpt", str(onnx)],
            "backend": ["--ckpt", str(ckpt), "--backend", "onnxruntime"]}
    got = {}
    for name, args in runs.items():
        out = tmp_path / name / "pred.json"
        assert main(["classify", "predict", *args, str(root / "val"), "--out", str(out), "--top-k", "3"]) == 0
        got[name] = predictions(out)
    assert (tmp_path / "backend" / "cls.onnx").is_file()  # the checkpoint, exported beside --out
    for name in ("file", "backend"):
        assert got[name].keys() == got["pytorch"].keys()
        for path, top in got["pytorch"].items():
            assert [h["class"] for h in got[name][path]] == [h["class"] for h in top]
            assert [h["prob"] for h in got[name][path]] == pytest.approx([h["prob"] for h in top], abs=1e-4)


def test_onnx_sessions_do_not_spin_between_nodes(tmp_path):
    # spinning workers starve each other on shared cores (docs/performance.md, int8)
    torch.manual_seed(0)
    task = ClassificationTask("resnet18", 3, class_names=list(SHAPES[:3]), image_size=32)
    onnx = export_model(save_task_checkpoint(task, tmp_path / "cls.ckpt"), "onnx", tmp_path / "cls.onnx")
    detector = export_model(DETECTOR, "onnx", tmp_path / "det.onnx")
    sessions = {"classifier": load_classifier(onnx).model.session,
                "detector": load_detector(detector, "cpu").model.session}
    for name, session in sessions.items():
        options = session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0", name


def with_cascade(checkpoint: dict) -> None:
    """The demo detector made a Cascade R-CNN: two stages after its box head, each starting as a
    copy of it (class-agnostic deltas: those of class 1)."""
    checkpoint["visionkit"]["model"]["box_cascade_iou"] = [0.6, 0.7]
    state = checkpoint["state_dict"]
    for stage in range(2):
        for key in [k for k in state if k.startswith("model.roi_heads.box_")]:
            value = state[key].clone()
            if "bbox_pred" in key:
                value = value[4:8]
            state[key.replace("roi_heads.", f"roi_heads.cascade.{stage}.")] = value


@pytest.mark.parametrize("soft_nms,cascade", [("none", False), ("gaussian", False), ("none", True)])
def test_detector_backend_onnxruntime_gives_pytorch_s_detections(tmp_path, soft_nms, cascade):
    detector = DETECTOR
    if soft_nms != "none" or cascade:  # with Soft-NMS, the file leaves Soft-NMS to the backend
        checkpoint = torch.load(DETECTOR, map_location="cpu", weights_only=False)
        checkpoint["visionkit"]["model"]["box_soft_nms"] = soft_nms
        if cascade:
            with_cascade(checkpoint)
        torch.save(checkpoint, detector := tmp_path / "changed.ckpt")
    assert len(load_detector(detector, "cpu").model.roi_heads.cascade) == (2 if cascade else 0)
    scenes = make_shapes_detection(tmp_path / "scenes", SHAPES[:3], n_train=0, n_val=3, size=256,
                                   max_objects=4, seed=7)
    common = ["--gt", str(scenes / "val.json"), "--no-images", "--num-workers", "0"]
    assert main(["detect", "predict", "--weights", str(detector), *common,
                 "--out", str(tmp_path / "pt")]) == 0
    assert main(["detect", "predict", "--weights", str(detector), "--backend", "onnxruntime", *common,
                 "--out", str(tmp_path / "ort")]) == 0
    pytorch, ort = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("pt", "ort"))
    exported = read_export_metadata(tmp_path / "ort" / detector.with_suffix(".onnx").name)
    assert (exported["soft_nms"] or {"method": "none"})["method"] == soft_nms
    assert len(pytorch) == len(ort) > 3
    for a, b in zip(pytorch, ort, strict=True):
        assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
        assert b["score"] == pytest.approx(a["score"], abs=1e-4)
        assert b["bbox"] == pytest.approx(a["bbox"], abs=1e-2)


def test_an_onnx_file_of_the_other_task_is_refused(tmp_path):
    onnx = export_model(DETECTOR, "onnx", tmp_path / "det.onnx")
    with pytest.raises(ConfigError, match="det.onnx: a detection model, not a classification one"):
        load_classifier(onnx)
    assert load_detector(onnx).classes == load_detector(DETECTOR).classes


def test_checkpoints_of_one_name_export_to_files_of_their_own(tmp_path):
    from visionkit.inference.onnx_backend import as_onnx_files

    first, second = tmp_path / "member_0" / "best.ckpt", tmp_path / "member_1" / "best.ckpt"
    for path, seed in ((first, 0), (second, 1)):
        path.parent.mkdir()
        torch.manual_seed(seed)
        save_task_checkpoint(ClassificationTask("resnet18", 2, class_names=["a", "b"], image_size=32), path)
    files = as_onnx_files([str(first), str(second)], tmp_path / "out")
    assert files == [str(tmp_path / "out" / "0_best.onnx"), str(tmp_path / "out" / "1_best.onnx")]
    assert (tmp_path / "out" / "0_best.onnx").read_bytes() != (tmp_path / "out" / "1_best.onnx").read_bytes()


def test_a_repeat_run_reuses_the_export_of_the_same_checkpoint(tmp_path, monkeypatch):
    from visionkit.inference import onnx_backend

    ckpt = tmp_path / "best.ckpt"
    task = ClassificationTask("resnet18", 2, class_names=["a", "b"], image_size=32)
    save_task_checkpoint(task, ckpt)
    (onnx,) = onnx_backend.as_onnx_files([str(ckpt)], tmp_path / "out")
    exported = []
    monkeypatch.setattr(onnx_backend, "export_model",
                        lambda *args: exported.append(args) or export_model(*args))
    assert onnx_backend.as_onnx_files([str(ckpt)], tmp_path / "out") == [onnx] and not exported
    with torch.no_grad():  # new weights under the same name: exported again
        next(task.model.parameters()).add_(1.0)
    save_task_checkpoint(task, ckpt)
    assert onnx_backend.as_onnx_files([str(ckpt)], tmp_path / "out") == [onnx] and len(exported) == 1
    assert onnx_backend.exported_from(onnx, ckpt)
    assert not onnx_backend.exported_from(tmp_path / "none.onnx", ckpt)
