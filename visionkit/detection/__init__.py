"""Detectors as plain nn.Modules: Faster R-CNN from `visionkit.ops` blocks, one file per stage.

- `transform`: normalise, resize, batch; map boxes back to the input images
- `backbones`, `fpn`: feature extractors (ResNet/MobileNetV3 + FPN, single-level VGG)
- `rpn`: RPN head and proposals; `roi_heads`: box head, predictor, sampling, post-processing
- `faster_rcnn`: the assembled model; `builders`: `create_detector` by name; `weights`
- `options`: every option of each family, typed (`FasterRCNNOptions`, `FastRCNNOptions`,
  `RCNNOptions`); `targets`: checks of training targets
- `proposals` (`SelectiveSearch`), `fast_rcnn`, `rcnn`: the proposal-based detectors, built by
  name in `proposal_builders`

Labels are contiguous ``1..K`` with ``0`` the background, so ``num_classes = K + 1``.
"""

from visionkit.detection.builders import create_detector, detector_options, list_detectors
from visionkit.detection.fast_rcnn import FastRCNN
from visionkit.detection.faster_rcnn import FasterRCNN
from visionkit.detection.options import FasterRCNNOptions, FastRCNNOptions, ProposalOptions, RCNNOptions
from visionkit.detection.proposals import SelectiveSearch
from visionkit.detection.rcnn import RCNN
from visionkit.detection.weights import classification_layers

__all__ = ["RCNN", "FastRCNN", "FastRCNNOptions", "FasterRCNN", "FasterRCNNOptions", "ProposalOptions",
           "RCNNOptions", "SelectiveSearch", "classification_layers", "create_detector",
           "detector_options", "list_detectors"]
