"""Running a file written by `visionkit export --format onnx` in ONNX Runtime, behind the same
`LoadedClassifier` / `LoadedDetector` interface as a checkpoint (so `classify predict`,
`detect predict` and ensembles take ``.onnx`` files as they take ``.ckpt`` files).

A detector file takes one ``[3, H, W]`` image of any size; its score threshold and detection
count are those it was exported with, so a lower ``--score-thresh`` than the file's cannot bring
back what it dropped (a note says so). The file of a Soft-NMS detector returns every candidate;
Soft-NMS then runs here (`apply_exported_soft_nms`). ONNX Runtime runs on the CPU here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionkit import __version__
from visionkit.errors import ConfigError
from visionkit.fileio import file_sha256, is_onnx_file
from visionkit.inference.classification import LoadedClassifier
from visionkit.inference.detector_loading import LoadedDetector
from visionkit.inference.export import apply_exported_soft_nms, export_model, read_export_metadata


def onnx_session(path: str | os.PathLike) -> Any:
    """An ONNX Runtime CPU session of ``path`` (a one-line `ConfigError` without onnxruntime)."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"{path}: running an ONNX file needs onnxruntime: "
                          f"pip install 'visionkit[export]'") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no per-node placement notes
    # Worker threads sleep between nodes instead of spinning. Spinning costs more than it saves
    # when the cores are shared: with one of 2 cores kept busy an int8 EfficientNet-Lite0 call
    # took 8.7 ms spinning and 4.5 ms not (fp32 11.0 and 7.9 ms; docs/performance.md)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxClassifierModel:
    """Logits ``[B, K]`` of a normalised batch ``[B, 3, S, S]``, from an ONNX Runtime session."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(None, {"image": images.detach().float().cpu().numpy()})
        return torch.from_numpy(np.asarray(logits))


class OnnxDetectorModel:
    """A detector's eval-mode call (list of 0–1 ``[3, H, W]`` images → list of detection dicts)
    from an ONNX Runtime session, keeping scores above ``score_thresh`` and ``max_det`` per image
    (with ``soft_nms``, the file's metadata: candidates above ``score_thresh``, then Soft-NMS)."""

    def __init__(self, session: Any, score_thresh: float, max_det: int,
                 soft_nms: dict[str, Any] | None = None) -> None:
        self.session, self.score_thresh, self.max_det = session, score_thresh, max_det
        self.soft_nms = soft_nms

    def __call__(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        for image in images:  # the file takes one image
            boxes, labels, scores = (torch.from_numpy(np.asarray(a)) for a in self.session.run(
                None, {"image": image.detach().float().cpu().numpy()}))
            keep = torch.where(scores > self.score_thresh)[0]
            boxes, labels, scores = boxes[keep], labels[keep], scores[keep]
            if self.soft_nms is not None:
                boxes, labels, scores = apply_exported_soft_nms(self.soft_nms, boxes, labels, scores,
                                                                self.score_thresh, self.max_det)
            out.append({"boxes": boxes[: self.max_det], "labels": labels[: self.max_det],
                        "scores": scores[: self.max_det]})
        return out


def load_onnx_classifier(path: str | os.PathLike) -> LoadedClassifier:
    """The classifier in an exported ``.onnx`` file, with its classes and preprocessing."""
    path = Path(path)
    meta = _metadata(path, "classification")
    return LoadedClassifier(OnnxClassifierModel(onnx_session(path)), list(meta["classes"]),  # type: ignore[arg-type]
                            int(meta["image_size"]), float(meta["crop_fraction"]),
                            list(meta["mean"]), list(meta["std"]))


def load_onnx_detector(path: str | os.PathLike, score_thresh: float = 0.05,
                       max_det: int = 100) -> LoadedDetector:
    """The detector in an exported ``.onnx`` file, with its classes and category ids."""
    path = Path(path)
    meta = _metadata(path, "detection")
    exported = meta.get("box_score_thresh")
    if exported is not None and score_thresh < exported:
        print(f"note: {path} was exported with score threshold {exported}; detections below it "
              f"are not in the file", file=sys.stderr)
    model = OnnxDetectorModel(onnx_session(path), score_thresh, max_det, meta.get("soft_nms"))
    return LoadedDetector(model, list(meta["classes"]), list(meta["category_ids"]), str(path))  # type: ignore[arg-type]


def exported_from(onnx: str | os.PathLike, ckpt: str | os.PathLike) -> bool:
    """True when ``onnx`` is this visionkit version's fp32 export of ``ckpt``'s bytes (its
    metadata names the checkpoint's SHA-256): a repeat `--backend onnxruntime` run reuses it."""
    try:
        meta = read_export_metadata(onnx)
    except Exception:  # missing, unreadable or not ours: export again
        return False
    return (meta.get("visionkit_version") == __version__ and "int8" not in meta
            and meta.get("checkpoint_sha256") == file_sha256(ckpt))


def as_onnx_files(weights: list[str], folder: str | os.PathLike) -> list[str]:
    """``weights`` with each checkpoint exported to ``folder/<stem>.onnx`` (``.onnx`` files and
    "coco" pass through; "coco" then runs in PyTorch). A file there already exported from the
    same checkpoint is reused."""
    stems = [Path(name).stem for name in weights]
    unique = len(set(stems)) == len(stems)  # bag members are all best.ckpt: number them
    out = []
    for i, (name, stem) in enumerate(zip(weights, stems, strict=True)):
        if is_onnx_file(name) or name == "coco":
            out.append(name)
            continue
        target = Path(folder) / (f"{stem}.onnx" if unique else f"{i}_{stem}.onnx")
        if not exported_from(target, name):
            export_model(name, "onnx", target)
        out.append(str(target))
    return out


def _metadata(path: Path, task: str) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    meta = read_export_metadata(path)
    if meta.get("task") != task:
        raise ConfigError(f"{path}: a {meta.get('task')} model, not a {task} one")
    return meta
