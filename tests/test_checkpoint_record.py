"""CheckpointRecord: round trip, files written before the version field, and one-line errors."""

from __future__ import annotations

import pytest
import torch

from visionkit.checkpoint_record import (
    RECORD_VERSION,
    CheckpointRecord,
    read_record,
    write_record,
)
from visionkit.errors import ConfigError
from visionkit.models.weights import slim_checkpoint

CLASSIFIER = CheckpointRecord("classification", {"name": "resnet18", "num_classes": 2}, ["ant", "bee"],
                              image_size=224, crop_fraction=0.875, mean=[0.5] * 3, std=[0.25] * 3)
DETECTOR = CheckpointRecord("detection", {"name": "fasterrcnn_resnet18_fpn", "num_classes": 3,
                                          "min_size": 64}, ["circle", "star"], category_ids=[1, 5])


@pytest.mark.parametrize("record", [CLASSIFIER, DETECTOR])
def test_round_trip_through_a_saved_file(tmp_path, record):
    checkpoint = {"state_dict": {"w": torch.zeros(1)}}
    write_record(checkpoint, record)
    torch.save(checkpoint, tmp_path / "x.ckpt")
    read = read_record(torch.load(tmp_path / "x.ckpt", weights_only=True), "x.ckpt", record.task)
    assert read == record and read.version == RECORD_VERSION
    assert None not in checkpoint["visionkit"].values()  # nothing written that nothing reads


def test_detection_names_and_ids_default_to_the_labels():
    bare = CheckpointRecord("detection", {"name": "d", "num_classes": 4})
    assert bare.label_category_ids() == [1, 2, 3] and bare.class_names() == ["1", "2", "3"]
    assert DETECTOR.class_names() == ["circle", "star"] and DETECTOR.label_category_ids() == [1, 5]
    assert DETECTOR.labels() == "num_classes=3, classes ['circle', 'star'], category ids [1, 5]"


def test_files_from_before_the_version_field_read_as_version_1():
    old_detector = {"task": "detection", "model": {"name": "d", "num_classes": 3}, "classes": ["a", "b"],
                    "category_ids": [1, 2], "min_size": [64], "max_size": 96,
                    "mean": [0.5] * 3, "std": [0.2] * 3}  # copies of builder options, never read
    record = read_record({"visionkit": old_detector}, "old.ckpt", "detection")
    assert record.version == 1 and record.category_ids == [1, 2] and record.mean is None


@pytest.mark.parametrize("change,message", [
    ({"version": 99}, "old.ckpt: checkpoint record version 99 is newer than this visionkit reads"),
    ({"task": "segmentation"}, "field 'task' must be one of ['classification', 'detection']"),
    ({"model": {"num_classes": 2}}, "field 'model' must hold the builder arguments with a 'name'"),
    ({"image_size": None}, "classification record lacks field(s) ['image_size']"),
    ({"colour": "red"}, "unknown checkpoint record field(s) ['colour']"),
])
def test_bad_records_raise_one_line_errors_naming_file_and_field(change, message):
    data = {**CLASSIFIER.to_dict(), **change}
    with pytest.raises(ConfigError) as err:
        read_record({"visionkit": data}, "old.ckpt")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_wrong_task_or_no_record_say_what_the_file_is():
    with pytest.raises(ConfigError, match=r"a.ckpt: not a detection checkpoint \(task: classification\); "
                                          r"pass a detector"):
        read_record({"visionkit": CLASSIFIER.to_dict()}, "a.ckpt", "detection", hint="pass a detector")
    with pytest.raises(ConfigError, match=r"b.pth: not a visionkit classification or detection "
                                          r"checkpoint \(task: none, not written by visionkit\)"):
        read_record({"state_dict": {}}, "b.pth")


def test_slim_checkpoint_keeps_the_checked_record(tmp_path):
    checkpoint = {"state_dict": {"w": torch.ones(2)}, "optimizer_states": [{}], "epoch": 3}
    write_record(checkpoint, DETECTOR)
    torch.save(checkpoint, tmp_path / "fit.ckpt")
    slim = torch.load(slim_checkpoint(tmp_path / "fit.ckpt", tmp_path / "slim.pt"), weights_only=True)
    assert set(slim) == {"state_dict", "visionkit"} and slim["state_dict"]["w"].dtype == torch.float16
    assert read_record(slim, "slim.pt") == DETECTOR
