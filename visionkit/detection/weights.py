"""Weights for detectors: classification weights for a backbone, detector state dicts by layout.

``pretrained`` paths may hold a torchvision state dict or a visionkit checkpoint (``model.``
prefix); files saved before torchvision nested its RPN/FPN conv blocks load through the legacy
key map. A request that cannot be met raises `WeightsError`, never a random init.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from visionkit.detection.rcnn import RCNN
from visionkit.errors import WeightsError
from visionkit.models.classifier import BACKBONES
from visionkit.models.weights import (
    fetch_url_weights,
    load_state_dict_file,
    state_dict_mismatch,
    torchvision_weights_url,
)

PREDICTOR = "roi_heads.box_predictor."
CASCADE = "roi_heads.cascade."  # Cascade R-CNN's stages after the first (box_cascade_iou)
# Layout of torchvision files saved before its RPNHead/FPN got nested conv blocks (the COCO files).
_LEGACY_KEYS = (
    (re.compile(r"^rpn\.head\.conv\.(weight|bias)$"), r"rpn.head.conv.0.0.\1"),
    (re.compile(r"^backbone\.fpn\.(inner|layer)_blocks\.(\d+)\.(weight|bias)$"),
     r"backbone.fpn.\1_blocks.\2.0.\3"),
)


def classification_weights(arch: str, pretrained: str | os.PathLike) -> tuple[dict, str]:
    """State dict and source of ImageNet (``"imagenet"``) or file classification weights for ``arch``."""
    if str(pretrained) == "imagenet":
        spec = BACKBONES.get(arch)
        if spec is not None and spec.imagenet_weights is not None:  # not torchvision's
            return spec.imagenet_weights()
        url = torchvision_weights_url(arch, "IMAGENET1K_V1")
        return fetch_url_weights(url, f"ImageNet {arch}"), url
    return load_state_dict_file(existing_file(pretrained, "'imagenet'")), str(pretrained)


def existing_file(path: str | os.PathLike, keyword: str) -> Path:
    """``path`` as a Path, or `WeightsError` saying it is neither ``keyword`` nor a file."""
    if not Path(path).is_file():
        raise WeightsError(f"pretrained={str(path)!r} is neither {keyword} nor an existing file")
    return Path(path)


def torchvision_layout(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keys in our (= current torchvision) layout: checkpoint ``model.`` prefix and legacy names fixed."""
    if state and all(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}
    out = {}
    for key, value in state.items():
        for pattern, replacement in _LEGACY_KEYS:
            key = pattern.sub(replacement, key)
        out[key] = value
    return out


def load_detector_weights(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Load a detector state dict; a predictor of another class count is left at its init, and
    so are a cascade's later stages when the weights are a Faster R-CNN's (no ``cascade.`` keys)."""
    state = torchvision_layout(state)
    own = model.state_dict()
    predictor = getattr(model, "predictor_prefix", PREDICTOR)
    fresh = {k for k, v in state.items()
             if (k.startswith(predictor) or k.startswith(CASCADE) and ".box_predictor." in k)
             and k in own and v.shape != own[k].shape}
    if not any(k.startswith(CASCADE) for k in state):
        fresh |= {k for k in own if k.startswith(CASCADE)}
    state = {k: v for k, v in state.items() if k not in fresh}
    # num_batches_tracked: present for BatchNorm, absent for frozen BatchNorm
    problem = state_dict_mismatch({k: v for k, v in own.items() if k not in fresh}, state,
                                  optional_suffixes=("num_batches_tracked",))
    if problem:
        raise WeightsError(f"{source}: weights do not fit this detector: {problem}; pass weights of "
                           f"this detector (classification weights go to pretrained_backbone)")
    with torch.no_grad():
        model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def classification_layers(model: nn.Module) -> nn.Module:
    """The layers of a detector that ``pretrained_backbone`` weights load into: an R-CNN's CNN,
    the other families' backbone body (without the FPN)."""
    return model.cnn if isinstance(model, RCNN) else model.backbone.body
