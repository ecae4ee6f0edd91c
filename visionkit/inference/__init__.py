"""Inference from checkpoints: plain PyTorch, no Lightning needed.

The Python API (`visionkit.inference.api`, imported on first use): `load` a checkpoint into a
callable `ClassifierModel` or `DetectorModel`, whose results are `Classification` / `Detections`.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["Classification", "ClassifierModel", "Detections", "DetectorModel", "as_rgb_array", "load"]

if TYPE_CHECKING:
    from visionkit.inference.api import (
        Classification,
        ClassifierModel,
        Detections,
        DetectorModel,
        as_rgb_array,
        load,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from visionkit.inference import api

        return getattr(api, name)
    raise AttributeError(f"module 'visionkit.inference' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *(name for name, value in globals().items() if isinstance(value, ModuleType))})
