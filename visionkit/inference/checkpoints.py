"""The model a visionkit checkpoint holds, classifier or detector, read from the file once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from visionkit.checkpoint_record import read_record
from visionkit.inference.classification import LoadedClassifier, classifier_from_checkpoint
from visionkit.inference.detector_loading import LoadedDetector, detector_from_checkpoint
from visionkit.models.weights import load_checkpoint_file


def load_checkpoint_model(ckpt: str | os.PathLike, device: torch.device | str = "cpu",
                          **detector_options: Any) -> LoadedClassifier | LoadedDetector:
    """The classifier or detector (by the checkpoint's task) in eval mode on ``device``;
    ``detector_options`` override a detector's saved builder options (`load_detector`)."""
    path = Path(ckpt)
    data = load_checkpoint_file(path)
    if read_record(data, path).task == "classification":
        return classifier_from_checkpoint(data, path, device)
    return detector_from_checkpoint(data, path, device, **detector_options)
