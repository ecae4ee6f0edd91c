"""The model a visionkit checkpoint holds, classifier or detector, read from the file once."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from visionkit.errors import ConfigError
from visionkit.inference.classification import LoadedClassifier, classifier_from_checkpoint
from visionkit.inference.detector_loading import LoadedDetector, detector_from_checkpoint
from visionkit.models.weights import load_checkpoint_file


def load_checkpoint_model(ckpt: str | os.PathLike, device: torch.device | str = "cpu"
                          ) -> LoadedClassifier | LoadedDetector:
    """The classifier or detector (by the checkpoint's task) in eval mode on ``device``."""
    path = Path(ckpt)
    data = load_checkpoint_file(path)
    task = (data.get("visionkit") or {}).get("task")
    if task == "classification":
        return classifier_from_checkpoint(data, path, device)
    if task == "detection":
        return detector_from_checkpoint(data, path, device)
    raise ConfigError(f"{path}: not a visionkit classification or detection checkpoint "
                      f"(task: {task or 'none'})")
