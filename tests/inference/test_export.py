"""`visionkit export`: TorchScript and ONNX files reproduce the PyTorch classifier and detector."""

import sys

import numpy as np
import pytest
import torch

from tests.tiny import tiny_faster_rcnn
from visionkit.cli import main
from visionkit.inference.classification import load_classifier
from visionkit.inference.detector_loading import load_detector
from visionkit.inference.export import export_model, read_export_metadata
from visionkit.tasks.checkpoint_io import save_task_checkpoint
from visionkit.tasks.classification import ClassificationTask
from visionkit.tasks.detection import DetectionTask

# Untrained and with no score threshold, so the detector outputs detections to compare.
DETECTOR_SIZE = (48, 80)  # resized to 38x64 and padded: every step of the transform runs


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    task = ClassificationTask("resnet18", 3, class_names=["a", "b", "c"], image_size=32)
    return save_task_checkpoint(task, tmp_path_factory.mktemp("cls") / "cls.ckpt")


@pytest.fixture(scope="module")
def detector_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    task = DetectionTask("fasterrcnn_resnet18_fpn", 3, faster_rcnn=tiny_faster_rcnn(box_score_thresh=0.0),
                         class_names=["circle", "star"], category_ids=[1, 5])
    return save_task_checkpoint(task, tmp_path_factory.mktemp("det") / "det.ckpt")


def run_exported(path, image: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of an exported file (TorchScript or ONNX Runtime) as tensors."""
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return [torch.from_numpy(np.asarray(a)) for a in session.run(None, {"image": image.numpy()})]
    out = torch.jit.load(str(path))(image)
    return list(out) if isinstance(out, tuple) else [out]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_classifier_matches_pytorch(classifier_ckpt, tmp_path, fmt):
    path = export_model(classifier_ckpt, fmt, tmp_path / f"cls.{fmt}")
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))  # batch 3, traced 2
    with torch.no_grad():
        expected = load_classifier(classifier_ckpt).model(images)
    (logits,) = run_exported(path, images)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)
    meta = read_export_metadata(path)
    if fmt == "onnx":  # torch.export, no deprecated TorchScript exporter (onnxscript: export extra)
        assert meta["onnx_exporter"] == "torch.export"
    assert meta["task"] == "classification" and meta["classes"] == ["a", "b", "c"]
    assert meta["image_size"] == 32 and len(meta["mean"]) == len(meta["std"]) == 3


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_detector_matches_pytorch_at_its_size(detector_ckpt, tmp_path, fmt):
    path = export_model(detector_ckpt, fmt, tmp_path / f"det.{fmt}", image_size=DETECTOR_SIZE)
    image = torch.rand(3, *DETECTOR_SIZE, generator=torch.Generator().manual_seed(7))  # not the sample
    with torch.no_grad():
        expected = load_detector(detector_ckpt).model([image])[0]
    boxes, labels, scores = run_exported(path, image)
    assert 0 < len(expected["boxes"]) == len(boxes) == len(labels) == len(scores)
    torch.testing.assert_close(boxes, expected["boxes"], atol=1e-3, rtol=0)
    torch.testing.assert_close(scores, expected["scores"], atol=1e-4, rtol=0)
    assert torch.equal(labels, expected["labels"])
    meta = read_export_metadata(path)
    assert meta["input_size"] == list(DETECTOR_SIZE) and meta["category_ids"] == [1, 5]
    if fmt == "onnx":  # traced: torch.export stops at per-class NMS (see the README)
        assert meta["onnx_exporter"] == "torchscript"
    if fmt == "onnx":  # the fixed size is enforced by ONNX Runtime
        with pytest.raises(Exception, match="(?i)dimension"):
            run_exported(path, torch.rand(3, 64, 64))


def test_cli_writes_torchscript_beside_the_checkpoint(classifier_ckpt, capsys):
    assert main(["export", "--ckpt", str(classifier_ckpt), "--format", "torchscript"]) == 0
    out = classifier_ckpt.with_name("cls.torchscript.pt")
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert read_export_metadata(out)["format"] == "torchscript"


def test_detector_exports_at_its_training_images_size_by_default(tmp_path, capsys):
    torch.manual_seed(0)
    task = DetectionTask("fasterrcnn_resnet18_fpn", 3, faster_rcnn=tiny_faster_rcnn(),
                         class_names=["circle", "star"], category_ids=[1, 5])
    task.image_hw = [48, 80]  # what on_fit_start notes from the training set
    ckpt = save_task_checkpoint(task, tmp_path / "det.ckpt")
    assert main(["export", "--ckpt", str(ckpt), "--format", "torchscript"]) == 0
    assert "input: float [3, 48, 80] in 0-1" in capsys.readouterr().out
    meta = read_export_metadata(tmp_path / "det.torchscript.pt")
    assert meta["input_size"] == [48, 80] and meta["min_size"] == [64]


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["export", "--ckpt", str(tmp_path / "none.ckpt"), "--format", "torchscript"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "none.ckpt" in err


def test_onnx_without_the_extra_names_it(classifier_ckpt, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    assert main(["export", "--ckpt", str(classifier_ckpt), "--format", "onnx"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'visionkit[export]'" in err
