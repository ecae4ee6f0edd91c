"""Loading a detector for inference: a `visionkit detect fit` checkpoint or torchvision's COCO weights."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision

from visionkit.checkpoint_record import read_record
from visionkit.detection import FasterRCNN, create_detector
from visionkit.detection.inference_rewrites import optimize_for_inference
from visionkit.detection.weights import load_detector_weights
from visionkit.errors import ConfigError
from visionkit.fileio import is_onnx_file
from visionkit.models.weights import load_checkpoint_file

COCO_MODEL = "fasterrcnn_resnet50_fpn"


@dataclass
class LoadedDetector:
    """A detector in eval mode with the names and COCO category ids of its labels 1..K."""

    model: FasterRCNN
    classes: list[str]
    category_ids: list[int]
    source: str
    image_hw: list[int] | None = None  # most common training image (height, width), if known

    def category_id(self, label: int) -> int:
        """Original (COCO JSON) category id of contiguous label ``label`` (1..K)."""
        return self.category_ids[label - 1]

    def class_name(self, label: int) -> str:
        """Name of contiguous label ``label`` (1..K)."""
        return self.classes[label - 1]


def coco_category_names() -> list[str]:
    """Names of COCO's category ids 1..90 as torchvision's weights list them ("N/A" for gaps)."""
    meta = torchvision.models.get_model_weights(COCO_MODEL).COCO_V1.meta
    return list(meta["categories"][1:])


def load_detector(weights: str | os.PathLike, device: torch.device | str = "cpu", *,
                  model: str = COCO_MODEL, **options: Any) -> LoadedDetector:
    """Detector from ``weights``: a visionkit detection checkpoint, a ``.onnx`` file from
    `visionkit export` (run in ONNX Runtime), or "coco" for model ``model``.

    ``options`` override the saved builder options (e.g. ``box_score_thresh``,
    ``box_detections_per_img``, ``min_size``); only tensors are unpickled from the file. The
    detector is for inference: BatchNorm is folded into the convolutions
    (`visionkit.detection.inference_rewrites.optimize_for_inference`).
    """
    if str(weights) == "coco":
        detector = optimize_for_inference(create_detector(model, 91, pretrained="coco", **options))
        detector = detector.to(device)
        return LoadedDetector(detector, coco_category_names(), list(range(1, 91)), f"COCO {model}")
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint (pass a file written by `visionkit detect fit` "
                          f"or --weights coco)")
    if is_onnx_file(path):  # `visionkit export`'s file, in ONNX Runtime
        from visionkit.inference.onnx_backend import load_onnx_detector  # it builds on this module

        return load_onnx_detector(path, options.get("box_score_thresh", 0.05),
                                  options.get("box_detections_per_img", 100))
    return detector_from_checkpoint(load_checkpoint_file(path), path, device, **options)


def detector_from_checkpoint(data: dict, path: Path, device: torch.device | str = "cpu",
                             **options: Any) -> LoadedDetector:
    """The detector (eval mode, on ``device``) in checkpoint contents ``data`` read from ``path``;
    ``options`` as for `load_detector`."""
    record = read_record(data, path, "detection", hint="pass a file written by `visionkit detect fit`")
    detector = create_detector(**{**record.model, **options})
    load_detector_weights(detector, data["state_dict"], str(path))
    return LoadedDetector(optimize_for_inference(detector).to(device), record.class_names(),
                          record.label_category_ids(), str(path), record.image_hw)
