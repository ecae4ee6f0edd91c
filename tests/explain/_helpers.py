"""Small builders shared by the explain tests: checkpoints, detectors, hook and mode inspection."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from visionkit.checkpoint_record import CheckpointRecord, write_record
from visionkit.models import create_classifier


def write_checkpoint(path: Path, backbone: str = "resnet18", classes=("circle", "square", "triangle"),
                     size: int = 48) -> Path:
    """A classification checkpoint as `classify fit` writes it (random weights)."""
    model = create_classifier(backbone, len(classes))
    data = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}
    write_record(data, CheckpointRecord("classification", dict(model.config), list(classes),
                                        image_size=size, crop_fraction=0.875,
                                        mean=list(model.backbone.mean), std=list(model.backbone.std)))
    torch.save(data, path)
    return path


def small_detector() -> nn.Module:
    """visionkit's Faster R-CNN (MobileNetV3 FPN), slimmed for fast CPU tests, every box kept."""
    from visionkit.detection import create_detector

    return create_detector("fasterrcnn_mobilenet_v3_large_fpn", 3, min_size=64, max_size=96,
                           fpn_channels=32, representation_size=64, rpn_pre_nms_top_n_test=50,
                           rpn_post_nms_top_n_test=16, rpn_score_thresh=0.0, box_score_thresh=0.0,
                           box_detections_per_img=8)


def hook_count(model: nn.Module) -> int:
    """Module hooks of every kind on `model` plus torch's global module hooks."""
    from torch.nn.modules import module as m

    local = sum(len(x._forward_hooks) + len(x._forward_pre_hooks) + len(x._backward_hooks)
                + len(x._backward_pre_hooks) for x in model.modules())
    return local + len(m._global_forward_hooks) + len(m._global_forward_pre_hooks) + len(
        m._global_backward_hooks)


def model_state(model: nn.Module) -> tuple:
    """Every module's training flag and every parameter's requires_grad and grad presence."""
    return (tuple(x.training for x in model.modules()),
            tuple(p.requires_grad for p in model.parameters()),
            tuple(p.grad is not None for p in model.parameters()))


def function_modes() -> int:
    """Number of torch-function modes active (0 outside any)."""
    return torch._C._len_torch_function_stack()
