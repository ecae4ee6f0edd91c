"""`visionkit export --int8`: ONNX Runtime int8 files that keep the demo models' answers, and the
one-line errors around it."""

from __future__ import annotations

import json

import pytest

from visionkit.cli import main
from visionkit.data.synthetic import SHAPES, make_shapes_classification
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.demo.weights import CLASSIFIER_CLASSES
from visionkit.errors import ConfigError, DatasetError
from visionkit.evaluation.coco import evaluate_coco
from visionkit.inference.export import export_model, read_export_metadata
from visionkit.inference.quantize import DETECTOR_QUANTIZED_SCOPES, calibration_images
from visionkit.models.weights import REPO_WEIGHTS

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
CLASSIFIER = REPO_WEIGHTS / "demo_shapes_classifier.ckpt"
DETECTOR = REPO_WEIGHTS / "demo_shapes_detector.ckpt"


def quantized_nodes(path) -> list[str]:
    """Names of the nodes an int8 QDQ file quantizes (those fed by a DequantizeLinear of a weight)."""
    model = onnx.load(path)
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return [n.name for n in model.graph.node
            if n.op_type in ("Conv", "Gemm", "MatMul") and any(i in dequantized for i in n.input[1:2])]


def test_int8_classifier_keeps_the_demo_classifier_s_answers(tmp_path):
    from visionkit.data.sources import expand_image_sources
    from visionkit.inference.classification import load_classifier
    from visionkit.inference.ensemble import ensemble_scores

    data = make_shapes_classification(tmp_path / "data", CLASSIFIER_CLASSES,
                                      n_train=16, n_val=12, size=64, seed=3)
    out = tmp_path / "cls.int8.onnx"
    assert main(["export", "--ckpt", str(CLASSIFIER), "--format", "onnx", "--int8",
                 "--calib", str(data / "train"), "--out", str(out)]) == 0
    info = read_export_metadata(out)["int8"]
    assert info["calibration_images"] == 64 and info["scope"] == "whole model"
    fp32 = export_model(CLASSIFIER, "onnx", tmp_path / "cls.onnx")
    assert out.stat().st_size < 0.4 * fp32.stat().st_size  # int8 weights
    convs = [n for n in onnx.load(fp32).graph.node if n.op_type == "Conv"]
    assert len(quantized_nodes(out)) >= len(convs)  # every conv (and the head) quantized
    paths = [str(p) for p in expand_image_sources([str(data / "val")])]
    (_, p32), (_, p8) = (ensemble_scores([load_classifier(f)], paths) for f in (fp32, out))
    agree = (p32.argmax(1) == p8.argmax(1)).float().mean().item()
    assert agree >= 0.95, agree
    assert (p32 - p8).abs().max().item() < 0.2  # int8 rounding, not another model


def test_int8_detector_quantizes_the_backbone_only_and_keeps_the_demo_map(tmp_path):
    scenes = make_shapes_detection(tmp_path / "scenes", SHAPES[:3], n_train=12, n_val=8, size=256,
                                   max_objects=6, seed=11)
    out = tmp_path / "det.int8.onnx"
    assert main(["export", "--ckpt", str(DETECTOR), "--format", "onnx", "--int8",
                 "--calib", str(scenes / "train.json"), "--out", str(out)]) == 0
    assert read_export_metadata(out)["int8"]["calibration_images"] == 12
    names = quantized_nodes(out)
    assert names and all(n.startswith(DETECTOR_QUANTIZED_SCOPES) for n in names)
    assert any(n.startswith("/detector/backbone/fpn") for n in names)
    assert any(n.startswith("/detector/rpn/head/") for n in names)
    fp32 = export_model(DETECTOR, "onnx", tmp_path / "det.onnx")
    maps = {}
    for name, path in (("fp32", fp32), ("int8", out)):
        run = tmp_path / name
        assert main(["detect", "predict", "--weights", str(path), "--gt", str(scenes / "val.json"),
                     "--no-images", "--num-workers", "0", "--out", str(run)]) == 0
        assert json.loads((run / "results.json").read_text())
        maps[name] = evaluate_coco(scenes / "val.json", run / "results.json").stats["AP"]
    assert maps["fp32"] > 0.5  # the demo detector works on these scenes
    assert abs(maps["fp32"] - maps["int8"]) <= 0.02, maps


def test_calibration_sample_is_seeded_and_a_json_names_missing_images(tmp_path):
    data = make_shapes_classification(tmp_path / "data", ("circle", "square"), n_train=10, n_val=0,
                                      size=32, seed=0)
    first, again = (calibration_images(data / "train", 7) for _ in range(2))
    assert first == again and len(first) == 7 and len(set(first)) == 7
    assert len(calibration_images(data / "train", 100)) == 20
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "nowhere.png"}], "categories": []}))
    with pytest.raises(ConfigError, match=r"bad\.json: calibration image .*nowhere\.png"):
        calibration_images(bad, 10)


@pytest.mark.parametrize("args, message", [
    (["--format", "onnx", "--int8"], "--int8 needs --calib"),
    (["--format", "onnx", "--calib", "x"], "--calib is for --int8"),
])
def test_int8_flags_are_checked_before_any_work(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["export", "--ckpt", str(CLASSIFIER), *args])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_int8_torchscript_and_an_empty_calibration_folder_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="int8 export writes ONNX"):
        export_model(CLASSIFIER, "torchscript", tmp_path / "x.pt", int8_calib=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: folder holds no image files"):
        export_model(CLASSIFIER, "onnx", tmp_path / "x.onnx", int8_calib=tmp_path / "empty")
    assert not (tmp_path / "x.onnx").exists()
