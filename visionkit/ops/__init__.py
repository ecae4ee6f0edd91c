"""Detection building blocks on plain tensors (torch and torchvision.ops only).

Boxes are ``xyxy`` absolute pixels, float, ``[N, 4]``. Call conventions follow torchvision's
(argument order, tensor inputs, return values), so each block can be checked against it:

- `boxes`: box_convert, box_area, box_iou, generalized_box_iou, clip_boxes_to_image,
  remove_small_boxes
- `box_coder`: BoxCoder (R-CNN deltas tx, ty, tw, th)
- `matcher`: Matcher (ground-truth index, -1 background, -2 ignored)
- `sampler`: BalancedPositiveNegativeSampler
- `anchors`: AnchorGenerator
- `losses`: smooth_l1_loss, fastrcnn_loss, zero_loss
- `nms`: nms, batched_nms, nms_reference, batched_soft_nms
- `roi`: roi_pool, roi_align, MultiScaleRoIAlign (FPN level assignment)

Every function, module and class here compiles with ``torch.jit.script`` and gives eager's values
(as torchvision's ops do; `tests/ops/test_script.py`), so models that call them can be scripted.
Annotations are what TorchScript reads (``list``, ``dict``, ``X | Y``); eagerly, any sequence or
mapping is taken where a list or dict is annotated. The box ops, NMS and RoI pooling also run
whole under ``torch.compile(fullgraph=True)`` and ``torch.export``.
"""

from visionkit.ops.anchors import AnchorGenerator, cell_anchors
from visionkit.ops.box_coder import BoxCoder
from visionkit.ops.boxes import (
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    generalized_box_iou,
    remove_small_boxes,
)
from visionkit.ops.losses import fastrcnn_loss, smooth_l1_loss, zero_loss
from visionkit.ops.matcher import Matcher
from visionkit.ops.nms import batched_nms, batched_soft_nms, nms, nms_reference
from visionkit.ops.roi import (
    MultiScaleRoIAlign,
    boxes_to_rois,
    fpn_levels,
    infer_scale,
    roi_align,
    roi_pool,
)
from visionkit.ops.sampler import BalancedPositiveNegativeSampler

__all__ = [
    "AnchorGenerator",
    "BalancedPositiveNegativeSampler",
    "BoxCoder",
    "Matcher",
    "MultiScaleRoIAlign",
    "batched_nms",
    "batched_soft_nms",
    "box_area",
    "box_convert",
    "box_iou",
    "boxes_to_rois",
    "cell_anchors",
    "clip_boxes_to_image",
    "fastrcnn_loss",
    "fpn_levels",
    "generalized_box_iou",
    "infer_scale",
    "nms",
    "nms_reference",
    "remove_small_boxes",
    "roi_align",
    "roi_pool",
    "smooth_l1_loss",
    "zero_loss",
]
