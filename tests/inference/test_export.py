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

# Untrained and with no score threshold, so the detector outputs detections to compare. Sizes
# other than the square the file is traced on (64, the tiny detector's min_size = max_size): one
# is padded, one is resized up and padded. Portrait, because at 64 px the pooler's scale
# inference (torchvision's: from the unpadded height) rounds to another level in eager mode for
# wide images, where padding is most of the height; the file keeps the true scales.
DETECTOR_SIZES = ((90, 60), (30, 20))

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
def test_exported_detector_matches_pytorch_at_any_size(detector_ckpt, tmp_path, fmt):
    path = export_model(detector_ckpt, fmt, tmp_path / f"det.{fmt}")
    detector = load_detector(detector_ckpt).model
    for size in DETECTOR_SIZES:
        image = torch.rand(3, *size, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            expected = detector([image])[0]
        boxes, labels, scores = run_exported(path, image)
        assert 0 < len(expected["boxes"]) == len(boxes) == len(labels) == len(scores), size
        torch.testing.assert_close(boxes, expected["boxes"], atol=1e-3, rtol=0)
        torch.testing.assert_close(scores, expected["scores"], atol=1e-4, rtol=0)
        assert torch.equal(labels, expected["labels"]), size
        assert boxes[:, 2:].max() <= max(size) and boxes[:, 2].max() <= size[1]  # its own pixels
    meta = read_export_metadata(path)
    assert meta["input"] == "float [3, H, W] in 0-1, any H and W" and meta["category_ids"] == [1, 5]
    if fmt == "onnx":  # traced: torch.export stops at per-class NMS (see the README)
        assert meta["onnx_exporter"] == "torchscript"


def test_cli_writes_torchscript_beside_the_checkpoint(classifier_ckpt, capsys):
    assert main(["export", "--ckpt", str(classifier_ckpt), "--format", "torchscript"]) == 0
    out = classifier_ckpt.with_name("cls.torchscript.pt")
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert read_export_metadata(out)["format"] == "torchscript"


def test_detector_onnx_export_prints_no_warning(detector_ckpt, tmp_path, capsys, recwarn):
    out = tmp_path / "det.onnx"
    assert main(["export", "--ckpt", str(detector_ckpt), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.out == f"onnx model written to {out}; input: float [3, H, W] in 0-1, any H and W\n"
    assert printed.err == "" and [str(w.message) for w in recwarn] == []


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["export", "--ckpt", str(tmp_path / "none.ckpt"), "--format", "torchscript"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "none.ckpt" in err


def test_onnx_without_the_extra_names_it(classifier_ckpt, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    assert main(["export", "--ckpt", str(classifier_ckpt), "--format", "onnx"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'visionkit[export]'" in err
