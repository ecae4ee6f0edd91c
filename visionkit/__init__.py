"""visionkit: transfer-learning classifiers, two-stage detectors and COCO mAP on PyTorch."""

__version__ = "0.1.0"
