"""Streaming COCO mAP over detector outputs: `update` per batch, `compute` once (DDP-aware)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from visionkit.distributed import gather_objects
from visionkit.errors import ConfigError
from visionkit.evaluation.coco import BACKENDS, CocoEvalResult, evaluate_loaded
from visionkit.evaluation.coco_inputs import ground_truth_from_targets, load_detections, to_numpy

_TARGET_FIELDS = ("boxes", "labels", "iscrowd", "area")
_DETECTION_FIELDS = ("boxes", "labels", "scores")


class DetectionEvaluator:
    """Collects detections and targets batch by batch; `compute` gives COCO bbox mAP over all.

    A detection is ``{"boxes" xyxy [N, 4], "labels" [N], "scores" [N]}``, a target
    ``{"boxes", "labels", "image_id", "iscrowd" (optional), "area" (optional, default the box
    area)}``, as the package's detectors and datasets produce them. With ``label_to_category``
    labels are the detector's contiguous ``1..K`` (``num_classes = K + 1`` in the model) and are
    reported as the dataset's category ids; without it labels are the category ids themselves.
    Every image with a target counts, with or without boxes. Under ``torch.distributed`` each
    process updates with its own share and `compute` gathers them all (an image seen twice, as
    a padded `DistributedSampler` does, counts once).
    """

    def __init__(self, label_to_category: Mapping[int, int] | None = None,
                 category_names: Mapping[int, str] | None = None, backend: str = "fast") -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.label_to_category = dict(label_to_category) if label_to_category else None
        self.category_names = dict(category_names) if category_names else None
        self.backend = backend
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self._images: list[tuple[int, dict[str, np.ndarray], dict[str, np.ndarray]]] = []

    def update(self, detections: Sequence[Mapping[str, Any]],
               targets: Sequence[Mapping[str, Any]]) -> None:
        """Add one batch: a detection dict and a target dict per image, in the same order."""
        if len(detections) != len(targets):
            raise ConfigError(f"update got {len(detections)} detections for {len(targets)} targets")
        for det, tgt in zip(detections, targets, strict=True):
            image_id = int(to_numpy(tgt["image_id"]).reshape(-1)[0])
            self._images.append((
                image_id,
                {k: to_numpy(tgt[k]) for k in _TARGET_FIELDS if k in tgt},
                {k: to_numpy(det[k]) for k in _DETECTION_FIELDS if k in det}))

    def compute(self) -> CocoEvalResult:
        """COCO mAP over every image seen by every process (pycocotools' default parameters)."""
        images: dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}
        for image_id, target, detection in self._gather():
            images.setdefault(image_id, (target, detection))
        targets = {i: t for i, (t, _) in images.items()}
        detections = {i: d for i, (_, d) in images.items()}
        if self.label_to_category is not None:
            category_ids = sorted(set(self.label_to_category.values()))
        else:  # every label seen; a category without GT does not change the stats
            seen = [x.get("labels", np.zeros(0)).reshape(-1) for pair in images.values()
                    for x in pair]
            category_ids = np.unique(np.concatenate(seen)).astype(np.int64).tolist() if seen else []
        gt = ground_truth_from_targets(targets, category_ids, category_names=self.category_names,
                                       label_to_category=self.label_to_category)
        dt = load_detections(detections, gt, label_to_category=self.label_to_category)
        return evaluate_loaded(gt, dt, backend=self.backend)

    def _gather(self) -> list[tuple[int, dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """This process's images, or every process's when torch.distributed is initialised."""
        return [image for part in gather_objects(self._images) for image in part]
