"""CocoDetection: label maps, negatives, crowd boxes, and every invalid-record case named."""

import json
import warnings

import cv2
import numpy as np
import pytest
import torch

from visionkit.data.coco_detection import CocoDetection, collate_detection, read_categories
from visionkit.data.detection_transforms import apply_detection_transform, detection_train_transform
from visionkit.errors import DatasetError

W, H = 40, 30


def write_coco(root, images=None, annotations=None, categories=None, files=None):
    """A COCO file with two 40x30 images (ids 1, 2) and categories 7 'cat', 3 'dog'."""
    images = images if images is not None else [
        {"id": 1, "file_name": "a.png", "width": W, "height": H},
        {"id": 2, "file_name": "b.png", "width": W, "height": H}]
    for name in files if files is not None else ("a.png", "b.png"):
        cv2.imwrite(str(root / name), np.full((H, W, 3), 128, np.uint8))
    data = {"images": images, "annotations": annotations or [],
            "categories": categories or [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]}
    path = root / "ann.json"
    path.write_text(json.dumps(data))
    return path


def ann(id, bbox, image_id=1, category_id=3, **extra):
    return {"id": id, "image_id": image_id, "bbox": bbox, "category_id": category_id, **extra}


def test_labels_follow_category_ids_and_negatives_are_kept(tmp_path):
    path = write_coco(tmp_path, annotations=[ann(1, [1, 2, 10, 5], category_id=7),
                                             ann(2, [0, 0, 4, 4], category_id=3, iscrowd=1)])
    ds = CocoDetection(path, tmp_path)
    assert ds.classes == ["dog", "cat"] and ds.num_classes == 3
    assert ds.label_to_category == {1: 3, 2: 7} and ds.issues == []
    assert read_categories(path) == {7: "cat", 3: "dog"}
    image, target = ds[0]
    assert image.shape == (3, H, W) and image.dtype == torch.float32 and 0.5 < image.mean() < 0.51
    assert target["boxes"].tolist() == [[1, 2, 11, 7], [0, 0, 4, 4]]
    assert target["labels"].tolist() == [2, 1] and target["iscrowd"].tolist() == [0, 1]
    assert int(target["image_id"]) == 1 and target["area"].tolist() == [50, 16]
    _, negative = ds[1]  # image 2 has no annotations: kept, with empty [0, 4] boxes
    assert negative["boxes"].shape == (0, 4) and negative["labels"].dtype == torch.int64
    images, targets = collate_detection([ds[0], ds[1]])
    assert len(images) == len(targets) == 2


@pytest.mark.parametrize("record, expected", [
    (ann(11, [1, 1, 5, 5], category_id=99), "annotation id 11 (image id 1): unknown category_id 99"),
    (ann(12, [1, "x", 5, 5]), "annotation id 12 (image id 1): bbox [1, 'x', 5, 5] is not 4 finite"),
    (ann(13, [1, 1, 5]), "annotation id 13 (image id 1): bbox [1, 1, 5] is not 4 finite"),
    (ann(14, [1, 1, float("nan"), 5]), "annotation id 14 (image id 1): bbox"),
    (ann(15, [1, 1, 0, 5]), "annotation id 15 (image id 1): bbox [1, 1, 0, 5] has width or height <= 0"),
    (ann(16, [1, 1, 5, -2]), "annotation id 16 (image id 1): bbox [1, 1, 5, -2] has width or height"),
    (ann(17, [50, 40, 5, 5]), "annotation id 17 (image id 1): bbox [50, 40, 5, 5] lies outside"),
    (ann(18, [1, 1, 5, 5], image_id=42), "annotation id 18 (image id 42): image_id 42 is not"),
    ({"id": 19, "image_id": 1, "category_id": 3}, "annotation id 19 (image id 1): missing field 'bbox'"),
    ({"image_id": 1, "bbox": [1, 1, 5, 5], "category_id": 3},
     "annotation #0 (image id 1): missing field 'id'"),
])
def test_invalid_annotation_is_dropped_and_named(tmp_path, record, expected):
    path = write_coco(tmp_path, annotations=[record, ann(100, [2, 2, 6, 6])])
    with pytest.warns(UserWarning, match="1 invalid records") as caught:
        ds = CocoDetection(path, tmp_path)
    assert expected in str(caught[0].message)
    assert len(ds.issues) == 1 and expected in str(ds.issues[0])
    assert str(ds.issues[0]).endswith("-> dropped")
    assert ds[0][1]["boxes"].tolist() == [[2, 2, 8, 8]]  # the valid annotation is kept
    with pytest.raises(DatasetError, match="1 invalid records, first ") as err:
        CocoDetection(path, tmp_path, on_invalid="error")
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert "-> dropped" not in str(err.value)  # nothing was dropped: the run stops
    with warnings.catch_warnings():  # "collect": the same policy and issues, no warning
        warnings.simplefilter("error")
        collected = CocoDetection(path, tmp_path, on_invalid="collect")
    assert collected.issues == ds.issues and len(collected) == len(ds)


def test_box_reaching_outside_is_clipped_and_named(tmp_path):
    path = write_coco(tmp_path, annotations=[ann(21, [-3, 20, 10, 20])])
    with pytest.warns(UserWarning, match="annotation id 21 .* reaches outside the 40x30 image"):
        ds = CocoDetection(path, tmp_path)
    assert ds.issues[0].action == "clipped"
    assert ds[0][1]["boxes"].tolist() == [[0, 20, 7, 30]]


@pytest.mark.parametrize("image, files, expected", [
    ({"id": 5, "file_name": "missing.png", "width": W, "height": H}, ("a.png",),
     "image id 5: image file"),
    ({"id": 5, "file_name": "a.png", "width": W}, ("a.png",), "image id 5: missing field 'height'"),
    ({"id": 5, "file_name": "a.png", "width": 0, "height": H}, ("a.png",),
     "image id 5: size 0x30 is not positive"),
    ({"file_name": "a.png", "width": W, "height": H}, ("a.png",), "image #0: missing field 'id'"),
])
def test_invalid_image_is_dropped_with_its_annotations(tmp_path, image, files, expected):
    valid = {"id": 2, "file_name": "b.png", "width": W, "height": H}
    path = write_coco(tmp_path, images=[image, valid], files=(*files, "b.png"),
                      annotations=[ann(1, [1, 1, 5, 5], image_id=5), ann(2, [1, 1, 5, 5], image_id=2)])
    with pytest.warns(UserWarning) as caught:
        ds = CocoDetection(path, tmp_path)
    assert [r.image_id for r in ds.records] == [2]
    message = str(caught[0].message)
    assert expected in message
    assert "annotation id 1 (image id 5): image_id 5 is not a (valid) image" in message


def test_file_level_problems_raise(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="bad.json: not a readable JSON"):
        CocoDetection(tmp_path / "bad.json", tmp_path)
    path = write_coco(tmp_path, images=[{"id": 1, "file_name": "a.png", "width": W, "height": H}] * 2)
    with pytest.raises(DatasetError, match=r"ann.json: duplicate image ids \[1\] \(field 'id'"):
        CocoDetection(path, tmp_path)
    path = write_coco(tmp_path, annotations=[ann(4, [1, 1, 5, 5]), ann(4, [2, 2, 5, 5], image_id=2)])
    with pytest.raises(DatasetError, match=r"ann.json: duplicate annotation ids \[4\] \(field 'id'"):
        CocoDetection(path, tmp_path)
    path = write_coco(tmp_path, categories=[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])
    with pytest.raises(DatasetError, match="duplicate category id 1"):
        CocoDetection(path, tmp_path)
    path = write_coco(tmp_path, categories=[{"name": "a"}])
    with pytest.raises(DatasetError, match="category #0 needs an integer 'id'"):
        CocoDetection(path, tmp_path)


def test_image_whose_size_disagrees_with_the_json_is_an_error(tmp_path):
    path = write_coco(tmp_path, images=[{"id": 9, "file_name": "a.png", "width": 64, "height": H}],
                      annotations=[ann(1, [1, 1, 5, 5], image_id=9)], files=("a.png",))
    ds = CocoDetection(path, tmp_path)
    with pytest.raises(DatasetError, match="image id 9 .* is 40x30 px but the JSON says 64x30"):
        ds[0]


def test_train_transform_moves_boxes_with_pixels(tmp_path):
    path = write_coco(tmp_path, annotations=[ann(1, [2, 3, 10, 5], iscrowd=1)])
    flip = detection_train_transform(hflip=1.0, color_jitter=0.0, seed=0)
    ds = CocoDetection(path, tmp_path, lambda img, tgt: apply_detection_transform(flip, img, tgt))
    _, target = ds[0]
    assert target["boxes"].tolist() == [[W - 12, 3, W - 2, 8]]
    assert target["iscrowd"].tolist() == [1] and target["area"].tolist() == [50]
    both = detection_train_transform(hflip=1.0, vflip=1.0, color_jitter=0.0, seed=0)
    image, target = CocoDetection(path, tmp_path, lambda i, t: apply_detection_transform(both, i, t))[0]
    assert target["boxes"].tolist() == [[W - 12, H - 8, W - 2, H - 3]]
    plain_image, _ = CocoDetection(path, tmp_path)[0]
    torch.testing.assert_close(image, plain_image.flip(1, 2))  # pixels turned with the boxes
    swap = detection_train_transform(hflip=0.0, transpose=1.0, color_jitter=0.0, seed=0)
    image, target = CocoDetection(path, tmp_path, lambda i, t: apply_detection_transform(swap, i, t))[0]
    assert target["boxes"].tolist() == [[3, 2, 8, 12]]  # x and y trade places; landscape -> portrait
    torch.testing.assert_close(image, plain_image.transpose(1, 2))
    crop = detection_train_transform(crop="bbox_safe", crop_size=24, crop_prob=1.0, seed=0)
    image, target = CocoDetection(path, tmp_path, lambda i, t: apply_detection_transform(crop, i, t))[0]
    assert image.shape == (3, 24, 24) and target["boxes"].shape == (1, 4)
    assert (target["boxes"][:, 2:] <= 24).all() and (target["boxes"][:, :2] >= 0).all()


@pytest.mark.parametrize("drop, expected", [
    ("images", "ann.json: missing top-level key 'images'"),
    ("annotations", "ann.json: missing top-level key 'annotations'"),
    ("categories", "ann.json: missing top-level key 'categories'"),
])
def test_missing_top_level_key_is_named(tmp_path, drop, expected):
    path = write_coco(tmp_path, annotations=[ann(1, [1, 1, 5, 5])])
    data = json.loads(path.read_text())
    del data[drop]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=expected):
        CocoDetection(path, tmp_path)


def test_a_file_without_any_box_is_an_error(tmp_path):
    path = write_coco(tmp_path)  # two images, 0 annotations overall
    with pytest.raises(DatasetError, match=r"ann.json: no usable annotations \(2 images, 0 boxes\)"):
        CocoDetection(path, tmp_path)
    path = write_coco(tmp_path, annotations=[ann(8, [1, 1, 0, 5])])  # the only box is invalid
    with pytest.warns(UserWarning), pytest.raises(
            DatasetError, match=r"first: annotation id 8 \(image id 1\): bbox \[1, 1, 0, 5\]"):
        CocoDetection(path, tmp_path)


def test_missing_image_files_everywhere_name_the_first_one(tmp_path):
    path = write_coco(tmp_path, annotations=[ann(1, [1, 1, 5, 5])], files=())
    with pytest.warns(UserWarning), pytest.raises(DatasetError) as err:
        CocoDetection(path, tmp_path / "elsewhere")
    message = str(err.value)
    assert "no usable images (0 images" in message
    assert f"image id 1: image file {tmp_path / 'elsewhere' / 'a.png'} does not exist" in message


def test_unicode_and_spaces_in_paths(tmp_path):
    root = tmp_path / "données d'été" / "画像"
    root.mkdir(parents=True)
    image = {"id": 1, "file_name": "chat noir é.png", "width": W, "height": H}
    path = write_coco(root, images=[image], annotations=[ann(1, [1, 1, 5, 5])], files=())
    cv2.imencode(".png", np.zeros((H, W, 3), np.uint8))[1].tofile(root / "chat noir é.png")
    image, target = CocoDetection(path, root)[0]
    assert image.shape == (3, H, W) and target["boxes"].tolist() == [[1, 1, 6, 6]]
