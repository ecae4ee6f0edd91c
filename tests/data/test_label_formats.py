"""Label-format converters: hand-written VOC, YOLO and LabelMe files checked field by field,
BCCD's own VOC XML against its shipped COCO file, and a BCCD COCO → YOLO → COCO round trip."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionkit.cli import main
from visionkit.data.label_formats import convert_to_coco, issues_path, read_yolo, to_coco, write_yolo
from visionkit.errors import DatasetError

BCCD = Path(__file__).resolve().parents[3] / "shared" / "data" / "bccd"


def image(path: Path, width: int, height: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (90, 120, 150)).save(path)
    return path


def voc_xml(filename: str, width: int, height: int, objects: list[tuple]) -> str:
    rows = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin>"
        f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, difficult, (x1, y1, x2, y2) in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size>{rows}</annotation>")


def annotations_of(coco: dict, file_name: str) -> list[dict]:
    (image_id,) = [i["id"] for i in coco["images"] if i["file_name"] == file_name]
    return [a for a in coco["annotations"] if a["image_id"] == image_id]


def test_voc_boxes_flags_clipping_and_unknown_classes(tmp_path):
    image(tmp_path / "JPEGImages" / "a.jpg", 100, 80)
    image(tmp_path / "JPEGImages" / "b.jpg", 50, 40)
    xml = tmp_path / "Annotations"
    xml.mkdir()
    (xml / "a.xml").write_text(voc_xml("a.jpg", 100, 80, [
        ("dog", 0, (11, 21, 40, 60)),  # 1-based inclusive -> x 10, w 30
        ("cat", 1, (1, 1, 10, 10)),  # difficult -> iscrowd 1
        ("dog", 0, (90, 70, 120, 95)),  # reaches outside -> clipped to 100x80
        ("bird", 0, (5, 5, 9, 9)),  # not in the class list -> skipped
        ("dog", 0, (200, 200, 220, 220)),  # wholly outside -> skipped
    ]))
    (xml / "b.xml").write_text(voc_xml("b.jpg", 50, 40, []))  # an image with no objects
    (xml / "c.xml").write_text(voc_xml("missing.jpg", 50, 40, [("dog", 0, (1, 1, 5, 5))]))
    classes = tmp_path / "classes.txt"
    classes.write_text("dog\ncat\n")
    out = tmp_path / "out.json"
    assert main(["data", "convert", "--from", "voc", str(xml), "--out", str(out),
                 "--classes", str(classes)]) == 0
    coco = json.loads(out.read_text())
    assert coco["categories"] == [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]
    assert [(i["file_name"], i["width"], i["height"]) for i in coco["images"]] == [
        ("a.jpg", 100, 80), ("b.jpg", 50, 40)]
    rows = annotations_of(coco, "a.jpg")
    assert [(a["category_id"], a["bbox"], a["area"], a["iscrowd"]) for a in rows] == [
        (1, [10.0, 20.0, 30.0, 40.0], 1200.0, 0),
        (2, [0.0, 0.0, 10.0, 10.0], 100.0, 1),
        (1, [89.0, 69.0, 11.0, 11.0], 121.0, 0)]
    assert [a["id"] for a in coco["annotations"]] == [1, 2, 3] and annotations_of(coco, "b.jpg") == []
    listed = issues_path(out).read_text().splitlines()
    assert len(listed) == 4
    assert "a.xml object 2: box [89.0, 69.0, 120.0, 95.0] reaches outside the 100x80 image" in listed[0]
    assert listed[0].endswith("clipped to [89.0, 69.0, 100.0, 80.0]")
    assert "a.xml object 3: unknown class 'bird'" in listed[1] and listed[1].endswith("skipped")
    assert "a.xml object 4" in listed[2] and "outside" in listed[2]
    assert "c.xml" in listed[3] and "missing.jpg is missing" in listed[3]


def test_yolo_lines_polygons_negatives_and_bad_lines(tmp_path):
    images = tmp_path / "data" / "images"
    image(images / "a.png", 200, 100)
    image(images / "sub" / "b.png", 40, 40)
    image(images / "c.png", 10, 10)
    labels = tmp_path / "data" / "labels"  # found by the images -> labels rule
    (labels / "sub").mkdir(parents=True)
    (labels / "classes.txt").write_text("car\nperson\n")
    (labels / "a.txt").write_text(
        "0 0.5 0.5 0.2 0.4\n"  # x 80..120, y 30..70
        "1 0.95 0.5 0.2 0.2\n"  # x 170..210 -> clipped to 200
        "2 0.5 0.5 0.1 0.1\n"  # class index 2 of 2 names -> skipped
        "1 0.1 0.1 0.3 0.1 0.3 0.3\n"  # a polygon (YOLO segmentation) -> its extent
        "0 0.5 zero 0.1 0.1\n"  # not numbers -> skipped
        "\n")
    (labels / "sub" / "b.txt").write_text("")  # an image with no boxes
    labels_read = read_yolo(images)
    coco = to_coco(labels_read)
    assert coco["categories"] == [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]
    assert [i["file_name"] for i in coco["images"]] == ["a.png", "c.png", "sub/b.png"]
    rows = annotations_of(coco, "a.png")
    np.testing.assert_allclose([a["bbox"] for a in rows],
                               [[80, 30, 40, 40], [170, 40, 30, 20], [20, 10, 40, 20]], atol=1e-9)
    assert [a["category_id"] for a in rows] == [1, 2, 2]
    np.testing.assert_allclose(rows[2]["segmentation"], [[20, 10, 60, 10, 60, 30]], atol=1e-9)
    assert annotations_of(coco, "sub/b.png") == [] and annotations_of(coco, "c.png") == []
    problems = [str(i) for i in labels_read.issues]
    assert len(problems) == 4
    assert "a.txt line 2: box" in problems[0] and "clipped to [170.0, 40.0, 200.0, 60.0]" in problems[0]
    assert "a.txt line 3: class index 2 outside the 2 class names" in problems[1]
    assert "a.txt line 5: not 'class cx cy w h' numbers" in problems[2]
    assert "c.png: no label file" in problems[3] and problems[3].endswith("kept with no boxes")


def test_yolo_without_class_names_is_one_clear_error(tmp_path):
    image(tmp_path / "a.png", 8, 8)
    with pytest.raises(DatasetError, match="no classes.txt.*--classes"):
        read_yolo(tmp_path)


def test_labelme_shapes_crowd_and_unsupported(tmp_path):
    image(tmp_path / "imgs" / "a.jpg", 120, 90)
    ann = tmp_path / "ann"
    ann.mkdir()
    shapes = [
        {"label": "leaf", "shape_type": "rectangle", "points": [[50, 40], [10, 20]]},
        {"label": "leaf", "shape_type": "polygon", "points": [[0, 0], [30, 5], [10, 25]],
         "flags": {"crowd": True}},
        {"label": "bug", "shape_type": "circle", "points": [[100, 80], [100, 95]]},  # r 15: clipped
        {"label": "leaf", "shape_type": "line", "points": [[0, 0], [5, 5]]},
    ]
    (ann / "a.json").write_text(json.dumps({"imagePath": "../imgs/a.jpg", "imageWidth": 120,
                                            "imageHeight": 90, "shapes": shapes}))
    (ann / "b.json").write_text(json.dumps({"imagePath": "../imgs/none.jpg", "shapes": []}))
    out = tmp_path / "out.json"
    labels = convert_to_coco("labelme", ann, out, image_root=tmp_path)
    coco = json.loads(out.read_text())
    assert coco["categories"] == [{"id": 1, "name": "bug"}, {"id": 2, "name": "leaf"}]
    assert coco["images"] == [{"id": 1, "file_name": "imgs/a.jpg", "width": 120, "height": 90}]
    rows = coco["annotations"]
    assert [(a["category_id"], a["bbox"], a["iscrowd"]) for a in rows] == [
        (2, [10.0, 20.0, 40.0, 20.0], 0), (2, [0.0, 0.0, 30.0, 25.0], 1), (1, [85.0, 65.0, 30.0, 25.0], 0)]
    assert rows[1]["segmentation"] == [[0.0, 0.0, 30.0, 5.0, 10.0, 25.0]] and "segmentation" not in rows[0]
    problems = [str(i) for i in labels.issues]
    assert len(problems) == 3
    assert "a.json shape 2" in problems[0] and "clipped to [85.0, 65.0, 115.0, 90.0]" in problems[0]
    assert "a.json shape 3: a line of 2 points has no box" in problems[1]
    assert "b.json" in problems[2] and "none.jpg is missing" in problems[2]


@pytest.mark.skipif(not BCCD.is_dir(), reason="../shared/data/bccd not present")
def test_bccd_voc_xml_gives_its_shipped_coco_file(tmp_path):
    out = tmp_path / "val.json"
    (tmp_path / "names.txt").write_text("RBC\nWBC\nPlatelets\n")
    assert main(["data", "convert", "--from", "voc", str(BCCD / "Annotations"), "--out", str(out),
                 "--image-root", str(BCCD), "--split", str(BCCD / "ImageSets/Main/val.txt"),
                 "--classes", str(tmp_path / "names.txt")]) == 0
    ours, shipped = json.loads(out.read_text()), json.loads((BCCD / "val.json").read_text())
    assert [c["name"] for c in ours["categories"]] == [c["name"] for c in shipped["categories"]]

    def by_file(coco: dict) -> dict:
        names = {i["id"]: (i["file_name"], i["width"], i["height"]) for i in coco["images"]}
        rows: dict = {name: [] for name in names.values()}
        for a in coco["annotations"]:
            rows[names[a["image_id"]]].append((a["category_id"], a["bbox"], a["area"], a["iscrowd"]))
        return rows

    assert by_file(ours) == by_file(shipped)  # every image, box, class, area and flag
    assert not issues_path(out).exists()


@pytest.mark.skipif(not BCCD.is_dir(), reason="../shared/data/bccd not present")
def test_bccd_coco_to_yolo_and_back_keeps_every_box(tmp_path):
    yolo = tmp_path / "yolo"
    assert main(["data", "convert", "--from", "coco", str(BCCD / "val.json"), "--to", "yolo",
                 "--out", str(yolo)]) == 0
    assert (yolo / "classes.txt").read_text() == "RBC\nWBC\nPlatelets\n"
    back = tmp_path / "back.json"
    assert main(["data", "convert", "--from", "yolo", str(yolo / "images.txt"), "--image-root",
                 str(BCCD), "--out", str(back)]) == 0  # labels/ and classes.txt found beside the list
    assert not issues_path(back).exists()  # nothing clipped: edge boxes round within ROUNDING_PX
    ours, shipped = json.loads(back.read_text()), json.loads((BCCD / "val.json").read_text())

    def in_order(coco: dict) -> list:  # by file, each file's boxes in annotation order
        files = {i["id"]: i["file_name"] for i in coco["images"]}
        return sorted(((files[a["image_id"]], k, a["category_id"], *a["bbox"])
                       for k, a in enumerate(coco["annotations"])), key=lambda row: row[:2])

    got, expected = in_order(ours), in_order(shipped)
    assert len(got) == len(expected) == 1138
    assert [(g[0], g[2]) for g in got] == [(e[0], e[2]) for e in expected]
    np.testing.assert_allclose([g[3:] for g in got], [e[3:] for e in expected], atol=1e-3, rtol=0)
    files = {i["id"]: i["file_name"] for i in ours["images"]}
    assert sorted(files.values()) == sorted(i["file_name"] for i in shipped["images"])


def test_coco_to_yolo_names_crowd_boxes(tmp_path):
    image(tmp_path / "a.png", 20, 10)
    coco = {"images": [{"id": 3, "file_name": "a.png", "width": 20, "height": 10}],
            "annotations": [{"id": 1, "image_id": 3, "category_id": 7, "bbox": [2, 1, 10, 4]},
                            {"id": 2, "image_id": 3, "category_id": 7, "bbox": [0, 0, 5, 5],
                             "iscrowd": 1}],
            "categories": [{"id": 7, "name": "box"}]}
    (tmp_path / "set.json").write_text(json.dumps(coco))
    images, boxes, issues = write_yolo(tmp_path / "set.json", tmp_path / "yolo")
    assert (images, boxes) == (1, 1)
    assert (tmp_path / "yolo/labels/a.txt").read_text() == "0 0.35000000 0.30000000 0.50000000 0.40000000\n"
    assert len(issues) == 1 and "image id 3" in str(issues[0]) and "crowd" in str(issues[0])


def test_check_reports_counts_sizes_and_problems(tmp_path, capsys):
    image(tmp_path / "a.png", 64, 48)
    image(tmp_path / "b.png", 30, 30)
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48},
                       {"id": 2, "file_name": "b.png", "width": 40, "height": 30}],  # file: 30x30
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
                            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [5, 5, 40, 40]},
                            {"id": 3, "image_id": 1, "category_id": 2, "bbox": [60, 0, 10, 10]},
                            {"id": 4, "image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]}],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (tmp_path / "set.json").write_text(json.dumps(coco))
    assert main(["data", "check", str(tmp_path / "set.json"), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["2 images, 3 boxes (0 crowd), 2 classes", "  a: 1", "  b: 2"]
    assert out[3] == "boxes per image: min 0, median 1.5, max 3; 1 images with none"
    assert out[5] == "3 problems:"
    assert "annotation id 3" in out[6] and "clipped" in out[6]
    assert "annotation id 4" in out[7] and "image_id 9 is not a (valid) image" in out[7]
    assert "image id 2" in out[8] and "the JSON says 40x30 but the file is 30x30" in out[8]
    assert (tmp_path / "report" / "box_sizes.png").stat().st_size > 1000


def test_voc_split_files_with_per_class_flags_give_their_stems(tmp_path):
    from visionkit.data.label_formats import read_split_ids

    split = tmp_path / "dog_train.txt"
    split.write_text("000005 -1\n000007  1\n\n000005 -1\n")
    assert read_split_ids(split) == ["000005", "000007"]
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(DatasetError, match="empty.txt: no image ids"):
        read_split_ids(tmp_path / "empty.txt")


def test_yolo_images_sharing_a_label_file_are_named_not_mixed(tmp_path):
    image(tmp_path / "a.png", 10, 10)
    image(tmp_path / "a.jpg", 10, 10)
    (tmp_path / "classes.txt").write_text("x\n")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    labels = read_yolo(tmp_path)
    assert [i.file_name for i in labels.images] == ["a.jpg"]  # the first; the second is named
    assert len(labels.issues) == 1 and "a.png" in str(labels.issues[0])
    assert "also" in str(labels.issues[0]) and "a.jpg" in str(labels.issues[0])
