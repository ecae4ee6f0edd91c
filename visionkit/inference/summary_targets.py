"""What `visionkit summary` takes: a backbone or detector name or a classification checkpoint,
and a `CxHxW` input shape; turned into a model and an example input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionkit.errors import ConfigError
from visionkit.inference.checkpoints import load_checkpoint_model
from visionkit.inference.detector_loading import LoadedDetector
from visionkit.models import create_classifier, list_backbones


@dataclass
class SummaryTarget:
    """A model to summarise, its default input shape and whether it takes detector input."""

    model: nn.Module
    default_shape: tuple[int, ...]
    detector: bool = False

    def example(self, shape: tuple[int, ...] | None = None) -> Any:
        """Classifiers: a zero batch `[1, C, H, W]` on the meta device (shapes are all a summary
        needs). Detectors: one random 0..1 image `[C, H, W]` (their outputs depend on values)."""
        shape = tuple(shape or self.default_shape)
        if self.detector:
            return [torch.rand(shape, generator=torch.Generator().manual_seed(0))]
        return torch.zeros(1, *shape, device="meta")


def parse_shape(text: str) -> tuple[int, ...]:
    """`"3x224x224"` → `(3, 224, 224)`; positive integers separated by `x`."""
    try:
        shape = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) < 2 or any(n <= 0 for n in shape):
        raise ConfigError(f"--input {text!r}: expected CxHxW with positive integers, e.g. 3x224x224")
    return shape


def summary_target(spec: str) -> SummaryTarget:
    """The model named by `spec`: a backbone name (built with 1000 classes on the meta device),
    a detector name (91 classes, random weights, on the CPU) or a classification checkpoint."""
    from visionkit.detection import create_detector, list_detectors

    if spec in list_backbones():
        with torch.device("meta"):
            model = create_classifier(spec, 1000)
        return SummaryTarget(model, (3, model.backbone.input_size, model.backbone.input_size))
    if spec in list_detectors():
        return _detector_target(create_detector(spec, 91))
    if Path(spec).is_file():
        loaded = load_checkpoint_model(spec)
        if isinstance(loaded, LoadedDetector):
            return _detector_target(loaded.model)
        return SummaryTarget(loaded.model.to("meta"), (3, loaded.image_size, loaded.image_size))
    raise ConfigError(f"{spec!r} is neither a checkpoint file nor a backbone or detector name "
                      f"({', '.join(list_backbones() + list_detectors())})")


def _detector_target(model: nn.Module) -> SummaryTarget:
    from visionkit.detection import RCNN

    if isinstance(model, RCNN):  # one CNN pass per warped proposal: summarise one region
        return SummaryTarget(model.cnn.to("meta"), (3, model.warp_size, model.warp_size))
    side = model.transform.min_size[-1]
    return SummaryTarget(model, (3, side, side), detector=True)
