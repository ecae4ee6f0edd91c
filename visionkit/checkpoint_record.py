"""What a visionkit checkpoint carries beside the weights: one typed record, one key, one version.

Both tasks write it (``checkpoint[RECORD_KEY] = record.to_dict()`` in ``on_save_checkpoint``) and
every loader reads it with `read_record`, which checks it and raises one-line `ConfigError`s that
name the file and the field. It holds what inference needs to rebuild the model and read its
output, and nothing else:

- ``task``: "classification" or "detection";
- ``model``: the builder's keyword arguments (`create_classifier` / `create_detector`), from which
  the same network is rebuilt (``name`` and ``num_classes`` always among them);
- ``classes``: class names of the outputs (classifier: index 0..K-1; detector: labels 1..K);
- ``category_ids`` (detection): the COCO category id of each label 1..K;
- ``image_size``, ``crop_fraction``, ``mean``, ``std`` (classification): the evaluation
  preprocessing. A detector resizes and normalises in its own transform, whose settings are in
  ``model``.

- ``image_hw`` (detection, version 2): the most common (height, width) of the training
  images, the size a fixed-size export defaults to.

Version 1 is the first versioned layout; files written before the field existed have the same
content and read as version 1 (a detector's then-written ``min_size``/``max_size``/``mean``/``std``
copies of its builder options are dropped on read). Version 2 adds ``image_hw``; every older
version still reads.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from visionkit.errors import ConfigError

RECORD_KEY = "visionkit"  # the checkpoint entry holding the record
RECORD_VERSION = 2
TASKS = ("classification", "detection")
# Written by detection checkpoints before the record was versioned; nothing ever read them.
_UNREAD_V1_KEYS = ("min_size", "max_size", "mean", "std")

Task = Literal["classification", "detection"]


@dataclass
class CheckpointRecord:
    """The metadata a visionkit checkpoint carries (see the module docstring).

    Args:
        task: "classification" or "detection".
        model: builder keyword arguments; ``name`` and ``num_classes`` are required.
        classes: class names (classifier outputs 0..K-1, detector labels 1..K).
        category_ids: detection only: the original category id of each label 1..K.
        image_size: classification only: the evaluation input size.
        crop_fraction: classification only: the centre-crop fraction at evaluation.
        mean: classification only: per-channel normalisation mean.
        std: classification only: per-channel normalisation std.
        image_hw: detection only: the most common (height, width) of the training images,
            the input size a fixed-size export defaults to.
        version: layout version (`RECORD_VERSION`).
    """

    task: Task
    model: dict[str, Any]
    classes: list[str] = field(default_factory=list)
    category_ids: list[int] | None = None
    image_size: int | None = None
    crop_fraction: float | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    image_hw: list[int] | None = None
    version: int = RECORD_VERSION

    @property
    def num_classes(self) -> int:
        """The model's output count (detection: K + 1 with the background)."""
        return int(self.model["num_classes"])

    def labels(self) -> str:
        """``num_classes=3, classes ['a', 'b']`` (and category ids, if any), for messages."""
        ids = f", category ids {list(self.category_ids)}" if self.category_ids else ""
        return f"num_classes={self.model.get('num_classes')}, classes {list(self.classes)}{ids}"

    def class_names(self) -> list[str]:
        """Names of the outputs; numbers (detection: the category ids) when none were saved."""
        if self.classes:
            return list(self.classes)
        if self.task == "detection":
            return [str(i) for i in self.label_category_ids()]
        return [str(i) for i in range(self.num_classes)]

    def label_category_ids(self) -> list[int]:
        """Category id of each detection label 1..K (1..K themselves when none were saved)."""
        return list(self.category_ids or range(1, self.num_classes))

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, numbers, strings), as stored in the checkpoint."""
        data = asdict(self)
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any, source: str | os.PathLike = "checkpoint") -> CheckpointRecord:
        """The record in ``data`` (a `to_dict` result), checked; `ConfigError` naming ``source``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: field {RECORD_KEY!r} must be a mapping, got "
                              f"{type(data).__name__}")
        data = dict(data)
        version = data.pop("version", 1)
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise ConfigError(f"{source}: checkpoint record version {version!r} is newer than this "
                              f"visionkit reads ({RECORD_VERSION}); upgrade visionkit")
        if data.get("task") not in TASKS:
            task = data.get("task", "none, not written by visionkit")
            raise ConfigError(f"{source}: field 'task' must be one of {list(TASKS)}, got {task}")
        if data["task"] == "detection":
            for key in _UNREAD_V1_KEYS:
                data.pop(key, None)
        known = {f for f in cls.__dataclass_fields__ if f != "version"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown checkpoint record field(s) {unknown}; known: "
                              f"{sorted(known)}")
        model = data.get("model")
        if not isinstance(model, dict) or not isinstance(model.get("name"), str) \
                or not isinstance(model.get("num_classes"), int):
            raise ConfigError(f"{source}: field 'model' must hold the builder arguments with a "
                              f"'name' and an integer 'num_classes', got {model!r}")
        if data["task"] == "classification":
            missing = [k for k in ("image_size", "crop_fraction", "mean", "std") if data.get(k) is None]
            if missing:
                raise ConfigError(f"{source}: classification record lacks field(s) {missing}")
        record = cls(**data, version=version)
        record.classes = [str(c) for c in record.classes or []]
        return record


def read_record(checkpoint: dict[str, Any], source: str | os.PathLike,
                task: Task | None = None, hint: str = "") -> CheckpointRecord:
    """The checked record of loaded checkpoint contents ``checkpoint`` (read from ``source``).

    With ``task``, a checkpoint of the other task (or one without a record) raises `ConfigError`
    saying which it is, followed by ``hint`` (what to pass instead).
    """
    raw = checkpoint.get(RECORD_KEY) if isinstance(checkpoint, dict) else None
    found = raw.get("task", "none") if isinstance(raw, dict) else "none, not written by visionkit"
    if raw is None or (task is not None and found != task):
        what = f"a {task}" if task else "a visionkit classification or detection"
        raise ConfigError(f"{source}: not {what} checkpoint (task: {found})"
                          + (f"; {hint}" if hint else ""))
    return CheckpointRecord.from_dict(raw, source)


def write_record(checkpoint: dict[str, Any], record: CheckpointRecord) -> None:
    """Store ``record`` in ``checkpoint`` (the dict Lightning or `slim_checkpoint` saves)."""
    checkpoint[RECORD_KEY] = record.to_dict()


def has_record(checkpoint: dict[str, Any]) -> bool:
    """Whether loaded checkpoint contents carry a visionkit record."""
    return isinstance(checkpoint, dict) and RECORD_KEY in checkpoint
