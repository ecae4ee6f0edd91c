"""`visionkit.load`: one callable per checkpoint, the `predict` commands' results, one-line errors.

Uses the shipped demo weights (`weights/`) on fresh synthetic shapes; trains nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import visionkit
from visionkit.data.images import read_image
from visionkit.data.synthetic import SHAPES, make_shapes_classification
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.errors import ConfigError, ImageReadError, WeightsError
from visionkit.inference import Classification, ClassifierModel, Detections, DetectorModel
from visionkit.inference.classification import load_classifier, predict_topk
from visionkit.inference.detection import Detector
from visionkit.inference.detector_loading import load_detector
from visionkit.models.weights import REPO_WEIGHTS

REPO = Path(__file__).resolve().parents[2]
CLASSIFIER = REPO_WEIGHTS / "demo_shapes_classifier.ckpt"
DETECTOR = REPO_WEIGHTS / "demo_shapes_detector.ckpt"


@pytest.fixture(scope="module")
def classifier() -> ClassifierModel:
    return visionkit.load(CLASSIFIER, "cpu")


@pytest.fixture(scope="module")
def detector() -> DetectorModel:
    return visionkit.load(DETECTOR, "cpu")


@pytest.fixture(scope="module")
def shape_files(tmp_path_factory) -> list[Path]:
    """Two fresh 64 px images of each of the classifier's 4 shapes, in `<class>/NNNN.png`."""
    root = make_shapes_classification(tmp_path_factory.mktemp("shapes"), SHAPES[:4], n_train=0,
                                      n_val=2, size=64, seed=7)
    return sorted((root / "val").rglob("*.png"))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """Three fresh 256 px scenes of circles, squares and triangles, with their COCO JSON."""
    return make_shapes_detection(tmp_path_factory.mktemp("scenes"), SHAPES[:3], n_train=0, n_val=3,
                                 size=256, max_objects=4, seed=7)


def scene_files(root: Path) -> list[Path]:
    return sorted((root / "images" / "val").glob("*.png"))


def assert_one_line(err: pytest.ExceptionInfo, *expected: str) -> None:
    message = str(err.value)
    assert "\n" not in message and len(message) < 300, message
    for text in expected:
        assert text in message, message


def test_load_is_lazy_and_picks_the_task_from_the_checkpoint(classifier, detector):
    assert isinstance(classifier, ClassifierModel) and isinstance(detector, DetectorModel)
    assert classifier.classes == sorted(SHAPES[:4])  # class folders, sorted
    assert detector.classes == list(SHAPES[:3])
    assert visionkit.load is visionkit.inference.load
    assert "load" in dir(visionkit)
    code = "import sys, visionkit; print('torch' in sys.modules, 'load' in dir(visionkit))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]  # `import visionkit` does not import torch


def test_classifier_gives_what_predict_topk_gives_for_paths_arrays_pil_and_lists(classifier, shape_files):
    rows = predict_topk(load_classifier(CLASSIFIER), shape_files, top_k=4)
    batch = classifier(shape_files, top_k=4)
    assert isinstance(batch, list) and len(batch) == len(rows) == 8
    for row, result in zip(rows, batch):
        assert result.names == [hit["class"] for hit in row["top"]]
        assert result.probs == pytest.approx([hit["prob"] for hit in row["top"]], abs=1e-6)
        assert result.name == Path(row["path"]).parent.name  # the demo classifier is right
    for path, listed in zip(shape_files, batch):
        one = classifier(path, top_k=4)
        assert isinstance(one, Classification)
        assert classifier(str(path), top_k=4) == one
        assert classifier(read_image(path), top_k=4) == one
        with Image.open(path) as image:
            assert classifier(image, top_k=4) == one
        assert one.names == listed.names and one.probs == pytest.approx(listed.probs, abs=1e-6)
    mixed = [shape_files[0], read_image(shape_files[1])]
    assert [r.names for r in classifier(mixed, top_k=4)] == [r.names for r in batch[:2]]
    assert len(classifier(shape_files[0]).names) == 4  # top_k defaults to 5, capped at 4 classes
    assert len(classifier(shape_files[0], top_k=2).names) == 2
    assert classifier([]) == []


def test_detector_gives_what_the_detector_path_gives(detector, scenes):
    files = scene_files(scenes)
    images = [read_image(p) for p in files]
    loaded = load_detector(DETECTOR, "cpu", box_score_thresh=0.05, box_detections_per_img=100)
    expected = Detector(loaded, torch.device("cpu"))(images)  # as `detect predict` runs it
    found = detector(images)
    assert isinstance(found, list) and len(found) == len(files)
    for dets, rows in zip(found, expected):
        assert isinstance(dets, Detections) and len(dets) == len(rows)
        assert dets.boxes.dtype == np.float32 and dets.boxes.shape == (len(rows), 4)
        boxes = np.array([r["bbox"] for r in rows], np.float32).reshape(-1, 4)
        np.testing.assert_array_equal(dets.boxes, boxes)
        np.testing.assert_array_equal(dets.scores, np.array([r["score"] for r in rows], np.float32))
        assert dets.labels.tolist() == [r["label"] for r in rows]
        assert dets.names == [r["class"] for r in rows]
        assert dets.category_ids == [r["category_id"] for r in rows]
        assert np.all(np.diff(dets.scores) <= 0)  # best first
    one = detector(files[0])
    assert isinstance(one, Detections)
    for same in (detector(str(files[0])), detector(images[0]), detector([files[0]])[0]):
        np.testing.assert_array_equal(same.boxes, one.boxes)
        np.testing.assert_array_equal(same.scores, one.scores)
    with Image.open(files[0]) as image:
        np.testing.assert_array_equal(detector(image).boxes, one.boxes)


def test_detector_boxes_are_in_the_pixels_of_the_image_given(detector, scenes):
    """Confident boxes find the drawn shapes (IoU > 0.5, right class) at the scene's own scale."""
    gt = json.loads((scenes / "val.json").read_text())
    names = {c["id"]: c["name"] for c in gt["categories"]}
    found_all, total = 0, 0
    for image in gt["images"]:
        dets = detector(scenes / image["file_name"])
        keep = dets.scores > 0.5
        for ann in (a for a in gt["annotations"] if a["image_id"] == image["id"]):
            x, y, w, h = ann["bbox"]
            total += 1
            for box, name in zip(dets.boxes[keep], np.array(dets.names, dtype=object)[keep]):
                ix = max(0.0, min(box[2], x + w) - max(box[0], x))
                iy = max(0.0, min(box[3], y + h) - max(box[1], y))
                union = w * h + (box[2] - box[0]) * (box[3] - box[1]) - ix * iy
                if name == names[ann["category_id"]] and ix * iy / union > 0.5:
                    found_all += 1
                    break
    assert total > 0 and found_all >= 0.9 * total


def test_to_moves_the_model_and_returns_it(device, shape_files, scenes):
    model = visionkit.load(CLASSIFIER, "cpu")
    before = model(shape_files[0])
    assert model.to(device) is model and model.device.type == device.type
    after = model(shape_files[0])
    assert after.names == before.names and after.probs == pytest.approx(before.probs, abs=1e-3)
    detector = visionkit.load(DETECTOR, "cpu")
    assert detector.to(device) is detector and detector.device.type == device.type
    assert isinstance(detector(scene_files(scenes)[0]), Detections)
    assert detector.to("cpu") is detector and detector.device.type == "cpu"


BAD_IMAGES = [
    (np.zeros((64, 64, 3), np.float32), ["float32", "(64, 64, 3)", "* 255"]),
    (np.zeros((3, 64, 64), np.uint8), ["(3, 64, 64)", "transpose(1, 2, 0)"]),
    (np.zeros((64, 64), np.uint8), ["(64, 64)", "gray"]),
    (np.zeros((64, 64, 4), np.uint8), ["(64, 64, 4)", "RGBA"]),
    (np.zeros((2, 64, 64, 3), np.uint8), ["(2, 64, 64, 3)", "list"]),
    (np.zeros((0, 64, 3), np.uint8), ["(0, 64, 3)"]),
    (torch.zeros(3, 64, 64), ["torch.Tensor"]),
    (42, ["int"]),
    ("no/such/image.png", ["no such image file", "no/such/image.png"]),
]


BAD_IDS = ["float", "chw", "gray", "rgba", "batch-array", "empty", "tensor", "int", "missing"]


@pytest.mark.parametrize("image, expected", BAD_IMAGES, ids=BAD_IDS)
def test_bad_input_is_one_line_naming_what_was_wrong(classifier, detector, image, expected):
    for model in (classifier, detector):
        with pytest.raises(ImageReadError) as err:
            model(image)
        assert_one_line(err, "image:", *expected)
        with pytest.raises(ImageReadError) as err:
            model([np.zeros((8, 8, 3), np.uint8), image])
        assert_one_line(err, "image 1:", *expected)


def test_bad_files_checkpoints_and_options_are_one_line(classifier, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ImageReadError) as err:
        classifier(broken)
    assert_one_line(err, "broken.png")
    with pytest.raises(WeightsError) as err:
        visionkit.load(tmp_path / "missing.ckpt")
    assert_one_line(err, "missing.ckpt")
    with pytest.raises(ConfigError) as err:
        classifier(np.zeros((8, 8, 3), np.uint8), top_k=0)
    assert_one_line(err, "top_k", "0")


def test_predict_topk_given_an_array_says_what_to_call(shape_files):
    loaded = load_classifier(CLASSIFIER)
    for wrong in (read_image(shape_files[0]), [read_image(shape_files[0])], str(shape_files[0])):
        with pytest.raises(ImageReadError) as err:
            predict_topk(loaded, wrong)
        assert_one_line(err, "predict_topk takes a list of image file paths", "visionkit.load")


def readme_python_blocks() -> list[str]:
    """The ```python blocks of the README's "Python API" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Python API\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Python API' section"
    return re.findall(r"^```python\n(.*?)^```", section.group(1), re.S | re.M)


def test_readme_python_api_examples_run_as_written(tmp_path, monkeypatch, capsys):
    blocks = readme_python_blocks()
    assert len(blocks) == 2
    (tmp_path / "weights").symlink_to(REPO_WEIGHTS)  # the README's paths, from a scratch folder
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        assert len([line for line in block.splitlines() if line and not line.startswith(
            ("import ", "from "))]) <= 5, block
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Classification(names=['triangle'" in out
    assert re.search(r"^\['triangle', 'triangle'\]$", out, re.M), out
    assert re.search(r"^triangle 0\.99\d \[ *4\d\.\d +10\d\.\d", out, re.M), out  # drawn at 46, 107
