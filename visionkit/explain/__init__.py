"""Seeing inside a model: per-layer summary with receptive fields, and Grad-CAM heatmaps.

- `summary.layer_summary(model, example)`: output shape, parameters, MACs, fp32 output memory
  and receptive field of every layer call, for any `nn.Module` (classifiers, detectors)
- `receptive_field`: the receptive-field recurrence and its propagation through torch ops
- `gradcam.grad_cam(model, inputs, score)`: Grad-CAM / Grad-CAM++ for a scalar score of the
  output (`class_score` for classifiers, `box_score` for a detection)
- `overlay`: heatmaps over images, PNG writing
"""

from visionkit.explain.gradcam import CamResult, box_score, class_score, grad_cam
from visionkit.explain.summary import LayerRow, ModelSummary, layer_summary

__all__ = ["CamResult", "LayerRow", "ModelSummary", "box_score", "class_score", "grad_cam", "layer_summary"]
