"""The small detector the tests train and run: Faster R-CNN ResNet-18 FPN options for 64 px images."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from visionkit.detection.options import FasterRCNNOptions, options_dict

TINY_FASTER_RCNN = FasterRCNNOptions(
    min_size=64, max_size=64, fpn_channels=32, representation_size=64, box_batch_size_per_image=32,
    rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50)


def tiny_faster_rcnn(**changes: Any) -> FasterRCNNOptions:
    """`TINY_FASTER_RCNN` with ``changes`` (e.g. ``box_score_thresh=0.0``: every detection kept)."""
    return replace(TINY_FASTER_RCNN, **changes)


def tiny_faster_rcnn_args(**changes: Any) -> list[str]:
    """The same options as `visionkit detect` flags (``--model.faster_rcnn.min_size 64`` ...)."""
    defaults = options_dict(FasterRCNNOptions())
    return [arg for key, value in options_dict(tiny_faster_rcnn(**changes)).items()
            if value != defaults[key] for arg in (f"--model.faster_rcnn.{key}", json.dumps(value))]
