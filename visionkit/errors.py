"""Exception families raised where data enters visionkit; messages name the file, record and field."""

from __future__ import annotations


class VisionkitError(Exception):
    """Base class of every error visionkit raises on purpose."""


class ImageReadError(VisionkitError):
    """An image file could not be read or decoded."""


class DatasetError(VisionkitError):
    """A dataset on disk (image folder, COCO JSON) is malformed."""


class WeightsError(VisionkitError):
    """Pretrained weights are missing, unreadable or do not fit the model."""


class ConfigError(VisionkitError):
    """A model name, option or checkpoint does not fit what was asked."""


class TrainingError(VisionkitError):
    """Training cannot go on (e.g. the loss stayed non-finite); the message says what was saved."""
