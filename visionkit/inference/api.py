"""The Python API: ``model = visionkit.load("best.ckpt")``, then ``model(image)`` for either task.

`load` reads the checkpoint once and returns, by the task its record names, a `ClassifierModel`
or a `DetectorModel`. Both take one image — a file path, an RGB ``uint8`` HWC numpy array or a
PIL image — and return one result (`Classification`, `Detections`), or take a list of images and
return a list. Preprocessing is the one the ``predict`` commands run: the classifier's
evaluation transform (`LoadedClassifier.eval_transform`) and top-k (`LoadedClassifier.top_k`),
the detector's own resize/normalise and box mapping through `visionkit.inference.detection.Detector`.
Bad input raises a one-line `visionkit.errors.ImageReadError` naming the image and what was wrong.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, overload

import numpy as np
import torch
from PIL import Image, ImageOps

from visionkit.data.images import read_image, to_rgb_array
from visionkit.device import auto_device
from visionkit.errors import ConfigError, ImageReadError
from visionkit.inference.checkpoints import load_checkpoint_model
from visionkit.inference.classification import LoadedClassifier
from visionkit.inference.detection import Detector
from visionkit.inference.detector_loading import LoadedDetector

ImageInput = str | os.PathLike | np.ndarray | Image.Image
"""One image: a file path, an RGB uint8 HWC numpy array, or a PIL image (any mode)."""


@dataclass(frozen=True)
class Classification:
    """The top-k classes of one image, best first.

    Attributes:
        names: class names.
        probs: their softmax probabilities.
        indices: their indices among the classifier's outputs (0..K-1).
    """

    names: list[str]
    probs: list[float]
    indices: list[int]

    @property
    def name(self) -> str:
        """The top-1 class name."""
        return self.names[0]

    @property
    def prob(self) -> float:
        """The top-1 probability."""
        return self.probs[0]


@dataclass(frozen=True, eq=False)
class Detections:
    """The objects found in one image, best score first.

    Attributes:
        boxes: ``[N, 4]`` float32 ``xyxy`` boxes in the pixels of the image as given.
        labels: ``[N]`` int64 contiguous labels 1..K.
        scores: ``[N]`` float32 scores.
        names: class name of each box.
        category_ids: original (COCO JSON) category id of each box.
    """

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    names: list[str] = field(default_factory=list)
    category_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.scores)


def _images(images: ImageInput | Sequence[ImageInput]) -> tuple[list[np.ndarray], bool]:
    """(RGB uint8 HWC arrays, whether ``images`` was one image rather than a list)."""
    if isinstance(images, (list, tuple)):
        return [as_rgb_array(image, f"image {i}") for i, image in enumerate(images)], False
    return [as_rgb_array(images, "image")], True


def as_rgb_array(image: ImageInput, what: str = "image") -> np.ndarray:
    """``image`` as the RGB uint8 ``[H, W, 3]`` array the models take; `ImageReadError` else.

    Args:
        image: a file path (decoded as the ``predict`` commands do, EXIF-rotated), an RGB uint8
            HWC numpy array, or a PIL image of any mode.
        what: how error messages name the image (e.g. ``"image 3"``).
    """
    if isinstance(image, (str, os.PathLike)):
        if not Path(image).is_file():
            raise ImageReadError(f"{what}: no such image file: {image}")
        return read_image(image)
    if isinstance(image, Image.Image):
        return to_rgb_array(ImageOps.exif_transpose(image))
    if isinstance(image, np.ndarray):
        shape, dtype = tuple(image.shape), image.dtype
        if dtype == np.uint8 and len(shape) == 3 and shape[2] == 3 and shape[0] and shape[1]:
            return image
        raise ImageReadError(f"{what}: expected an RGB uint8 HWC array [H, W, 3], got dtype {dtype} "
                             f"shape {shape}{_array_hint(shape, dtype)}")
    raise ImageReadError(f"{what}: expected a file path, an RGB uint8 HWC numpy array or a PIL "
                         f"image, got {type(image).__module__}.{type(image).__qualname__}")


def _array_hint(shape: tuple[int, ...], dtype: np.dtype) -> str:
    """How to turn an array of this shape and dtype into RGB uint8 HWC, if there is a usual way."""
    if len(shape) == 4:
        return "; for a batch pass a list of images, e.g. list(array)"
    if len(shape) == 2:
        return "; for a gray image use np.stack([a] * 3, axis=-1)"
    if len(shape) == 3 and shape[0] == 3 and shape[2] != 3:
        return "; for a CHW array use a.transpose(1, 2, 0)"
    if len(shape) == 3 and shape[2] == 4:
        return "; for RGBA drop the alpha channel: a[..., :3]"
    if dtype != np.uint8 and np.issubdtype(dtype, np.floating):
        return "; for 0-1 floats use (a * 255).round().astype(np.uint8)"
    return ""


def _positive(name: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


_Model = TypeVar("_Model", bound="_LoadedModel")


class _LoadedModel:
    """What both callable models share: class names, the device, moving between devices."""

    loaded: LoadedClassifier | LoadedDetector

    @property
    def classes(self) -> list[str]:
        """Class names (a classifier's outputs in order; a detector's labels 1..K)."""
        return list(self.loaded.classes)

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return next(self.loaded.model.parameters()).device

    def to(self: _Model, device: torch.device | str) -> _Model:
        """Move the model to ``device`` ("cpu", "cuda", "auto", ...); returns the model."""
        self.loaded.model.to(auto_device(str(device)))
        self._moved()
        return self

    def _moved(self) -> None:
        """Called after `to`, for parts that hold the device."""


class ClassifierModel(_LoadedModel):
    """A loaded classifier as a callable: images in, top-k `Classification` results out.

    Args:
        loaded: the classifier, its class names and its evaluation preprocessing
            (`visionkit.inference.classification.load_classifier`).
        top_k: how many classes each result holds (at most the number of classes).
        batch_size: images per forward pass.
    """

    def __init__(self, loaded: LoadedClassifier, *, top_k: int = 5, batch_size: int = 32) -> None:
        self.loaded, self.top_k, self.batch_size = loaded, _positive("top_k", top_k), \
            _positive("batch_size", batch_size)
        self.transform = loaded.eval_transform()

    @overload
    def __call__(self, images: ImageInput, top_k: int | None = None) -> Classification: ...
    @overload
    def __call__(self, images: Sequence[ImageInput], top_k: int | None = None
                 ) -> list[Classification]: ...
    def __call__(self, images: ImageInput | Sequence[ImageInput], top_k: int | None = None
                 ) -> Classification | list[Classification]:
        """Top-k classes of one image, or of each image of a list (a list, in the same order).

        ``top_k`` overrides the model's `top_k` for this call.
        """
        arrays, single = _images(images)
        k = self.top_k if top_k is None else _positive("top_k", top_k)
        results = []
        for start in range(0, len(arrays), self.batch_size):
            batch = torch.stack([self.transform(image=a)["image"]
                                 for a in arrays[start:start + self.batch_size]])
            for top in self.loaded.top_k(batch.to(self.device), k):
                results.append(Classification([self.loaded.classes[i] for i, _ in top],
                                              [p for _, p in top], [i for i, _ in top]))
        return results[0] if single else results

    def __repr__(self) -> str:
        return f"ClassifierModel(classes={self.loaded.classes}, device={self.device})"


class DetectorModel(_LoadedModel):
    """A loaded detector as a callable: images in, `Detections` out (boxes in the images' pixels).

    Args:
        loaded: the detector and the names / category ids of its labels
            (`visionkit.inference.detector_loading.load_detector`).
        precision: "auto" (bf16, else fp16, autocast on CUDA; fp32 elsewhere), "fp32", "fp16" or
            "bf16", as ``detect predict --precision``.
        batch_size: images per forward pass (``detect predict``'s default: 4).
    """

    def __init__(self, loaded: LoadedDetector, *, precision: str = "auto", batch_size: int = 4) -> None:
        self.loaded, self.batch_size = loaded, _positive("batch_size", batch_size)
        self.detector = Detector(loaded, self.device, precision)

    def _moved(self) -> None:
        self.detector.device = self.device

    @overload
    def __call__(self, images: ImageInput) -> Detections: ...
    @overload
    def __call__(self, images: Sequence[ImageInput]) -> list[Detections]: ...
    def __call__(self, images: ImageInput | Sequence[ImageInput]) -> Detections | list[Detections]:
        """Detections of one image, or of each image of a list (a list, in the same order)."""
        arrays, single = _images(images)
        results = []
        for start in range(0, len(arrays), self.batch_size):
            for rows in self.detector(arrays[start:start + self.batch_size]):
                results.append(Detections(
                    np.array([r["bbox"] for r in rows], np.float32).reshape(-1, 4),
                    np.array([r["label"] for r in rows], np.int64),
                    np.array([r["score"] for r in rows], np.float32),
                    [r["class"] for r in rows], [r["category_id"] for r in rows]))
        return results[0] if single else results

    def __repr__(self) -> str:
        return f"DetectorModel({self.loaded.source}, classes={self.loaded.classes}, device={self.device})"


def load(checkpoint: str | os.PathLike, device: torch.device | str = "auto", *, top_k: int = 5,
         score_thresh: float = 0.05, max_det: int = 100, precision: str = "auto"
         ) -> ClassifierModel | DetectorModel:
    """The classifier or detector a visionkit checkpoint holds (by its record's task), callable.

    ``model(image)`` takes a file path, an RGB uint8 HWC numpy array or a PIL image (a list of
    them gives a list) and returns a `Classification` or `Detections`; ``model.to(device)`` moves
    it. Defaults are those of the ``predict`` commands.

    Args:
        checkpoint: a file written by ``visionkit classify fit`` / ``detect fit`` (or the demo's).
        device: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", ... or a `torch.device`.
        top_k: classifier only: classes per result.
        score_thresh: detector only: the lowest score kept.
        max_det: detector only: the most boxes per image.
        precision: detector only: autocast precision, as `DetectorModel`.
    """
    loaded = load_checkpoint_model(checkpoint, auto_device(str(device)),
                                   box_score_thresh=score_thresh, box_detections_per_img=max_det)
    if isinstance(loaded, LoadedClassifier):
        return ClassifierModel(loaded, top_k=top_k)
    return DetectorModel(loaded, precision=precision)
