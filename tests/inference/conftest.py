"""A tiny detection checkpoint (untrained, written the way `detect fit` writes one) and its data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.tiny import TINY_FASTER_RCNN
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.tasks.checkpoint_io import save_task_checkpoint
from visionkit.tasks.detection import DetectionTask


def save_detection_checkpoint(path: Path, category_ids: list[int], classes: list[str]) -> Path:
    """A checkpoint as `visionkit detect fit` saves it (state dict + visionkit metadata)."""
    torch.manual_seed(0)
    task = DetectionTask("fasterrcnn_resnet18_fpn", len(classes) + 1, faster_rcnn=TINY_FASTER_RCNN,
                         class_names=classes, category_ids=category_ids)
    return save_task_checkpoint(task, path)


@pytest.fixture(scope="session")
def shapes_set(tmp_path_factory) -> Path:
    """Synthetic COCO set (circle = id 1, star = id 5) with train/val JSON and PNGs."""
    return make_shapes_detection(tmp_path_factory.mktemp("shapes"), ("circle", "star"), n_train=4,
                                 n_val=6, size=64, max_objects=2)


@pytest.fixture(scope="session")
def detection_ckpt(tmp_path_factory) -> Path:
    return save_detection_checkpoint(tmp_path_factory.mktemp("ckpt") / "det.ckpt", [1, 5],
                                     ["circle", "star"])
