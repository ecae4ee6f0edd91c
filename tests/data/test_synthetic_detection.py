"""Synthetic shapes detection set: deterministic files, exact boxes, COCO JSON that loads."""

import json

import cv2
import numpy as np

from visionkit.data.coco_detection import CocoDetection
from visionkit.data.synthetic import SHAPES
from visionkit.data.synthetic_detection import make_shapes_detection


def test_same_seed_writes_identical_files(tmp_path):
    a = make_shapes_detection(tmp_path / "a", n_train=4, n_val=2, size=64, seed=3)
    b = make_shapes_detection(tmp_path / "b", n_train=4, n_val=2, size=64, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 4 + 2 + 2
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_boxes_cover_the_drawn_shapes_and_ids_are_the_shape_positions(tmp_path):
    classes = ("circle", "triangle", "star")
    root = make_shapes_detection(tmp_path, classes, n_train=12, n_val=3, size=96, max_objects=3)
    data = json.loads((root / "train.json").read_text())
    assert [c["id"] for c in data["categories"]] == [SHAPES.index(k) + 1 for k in classes] == [1, 3, 5]
    assert data["annotations"], "some shapes were drawn"
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96
    # Pixels outside every box are background: within the noise of the image's own background.
    first = data["images"][0]
    image = cv2.imread(str(root / first["file_name"])).astype(np.int16)
    mask = np.ones(image.shape[:2], bool)
    for a in data["annotations"]:
        if a["image_id"] == first["id"]:
            x, y, w, h = a["bbox"]
            mask[y:y + h, x:x + w] = False
    assert image[mask].std(axis=0).max() < 25
    ds = CocoDetection(root / "val.json", root)
    assert ds.classes == list(classes) and len(ds) == 3 and ds.issues == []
