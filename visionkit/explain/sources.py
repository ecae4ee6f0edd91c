"""What the explain commands take: a backbone name or checkpoint path, and `CxHxW` input shapes."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from visionkit.errors import ConfigError
from visionkit.inference.classification import load_classifier
from visionkit.models import create_classifier, list_backbones


def parse_shape(text: str) -> tuple[int, ...]:
    """`"3x224x224"` → `(3, 224, 224)`; positive integers separated by `x`."""
    try:
        shape = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) < 2 or any(n <= 0 for n in shape):
        raise ConfigError(f"--input {text!r}: expected CxHxW with positive integers, e.g. 3x224x224")
    return shape


def model_for_summary(spec: str) -> tuple[nn.Module, tuple[int, int, int]]:
    """The model named by `spec`, on the meta device, and its default input shape `(3, S, S)`.

    spec: a backbone name from `list_backbones()` (built with 1000 classes) or the path of a
    classification checkpoint. A summary needs shapes, not weights: on the meta device even the
    largest backbone is summarised at once and without allocating its memory.
    """
    if spec in list_backbones():
        with torch.device("meta"):
            model = create_classifier(spec, 1000)
        return model, (3, model.backbone.input_size, model.backbone.input_size)
    if Path(spec).is_file():
        loaded = load_classifier(spec)
        return loaded.model.to("meta"), (3, loaded.image_size, loaded.image_size)
    raise ConfigError(f"{spec!r} is neither a checkpoint file nor a backbone name "
                      f"({', '.join(list_backbones())})")
