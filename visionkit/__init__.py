"""visionkit: transfer-learning classifiers, two-stage detectors and COCO mAP on PyTorch.

``model = visionkit.load("best.ckpt")`` gives the checkpoint's classifier or detector as a
callable: ``model(image)`` with a path, an RGB uint8 HWC numpy array or a PIL image (see
`visionkit.inference.api`). `load` is imported on first use, so ``import visionkit`` stays light.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "load"]

if TYPE_CHECKING:
    from visionkit.inference.api import load


def __getattr__(name: str) -> Any:
    if name == "load":
        from visionkit.inference.api import load

        return load
    raise AttributeError(f"module 'visionkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *(name for name, value in globals().items() if isinstance(value, ModuleType))})
