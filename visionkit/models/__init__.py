"""Backbones (torchvision architectures), classification heads, classifiers and weight loading."""

from visionkit.models.backbone import Backbone, BackboneSpec
from visionkit.models.classifier import ImageClassifier, create_classifier, list_backbones
from visionkit.models.heads import ClassifierHead
from visionkit.models.transfer import (
    modules_outside,
    parameter_groups,
    scaled_parameter_groups,
    set_group_trainable,
    trainable_deepest,
)

__all__ = [
    "Backbone", "BackboneSpec", "ClassifierHead", "ImageClassifier", "create_classifier",
    "list_backbones", "modules_outside", "parameter_groups", "scaled_parameter_groups",
    "set_group_trainable", "trainable_deepest",
]
