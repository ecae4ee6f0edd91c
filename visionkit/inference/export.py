"""Exporting a classification or detection checkpoint to TorchScript or ONNX, metadata inside.

Classifier files take a normalised float ``[B, 3, S, S]`` batch (any B; S the checkpoint's
``image_size``) and return logits ``[B, K]``. Detector files take ONE float ``[3, H, W]`` image
in 0–1 of any size and return ``(boxes [D, 4] xyxy in its pixels, labels int64 [D] in 1..K,
scores [D])``. Both are captured on the CPU from a sample input: through ``torch.export`` for a
classifier's ONNX file (`write_onnx`), traced otherwise. A traced detector computes its resize,
padding, anchor grids and proposal counts in the graph (the detection modules keep sizes as
traced tensors), so the file accepts any image size; it is traced on a ``min_size`` square, on
which the RoI pooler's feature-map scales are exact. A TorchScript detector keeps CPU tensors
it creates, so run it on the CPU. Soft-NMS (``box_soft_nms``) is a loop over picks that a trace
cannot keep: such a detector's file returns every candidate above the score threshold, and its
metadata's ``soft_nms`` says how to finish (`apply_exported_soft_nms`, which the ONNX Runtime
backend calls).

The metadata (a JSON object: task, classes, sizes, normalisation or category ids) is the
TorchScript extra file ``visionkit.json`` and the ONNX ``metadata_props`` key ``visionkit``;
`read_export_metadata` reads either.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from visionkit import __version__
from visionkit.data.transforms import classification_eval_steps, classification_eval_transform
from visionkit.errors import ConfigError
from visionkit.fileio import atomic_write_with, file_sha256, is_onnx_file
from visionkit.inference.checkpoints import load_checkpoint_model
from visionkit.inference.classification import LoadedClassifier
from visionkit.inference.detector_loading import LoadedDetector
from visionkit.ops import batched_soft_nms
from visionkit.ops.nms import soft_nms_min_score

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
METADATA_KEY = "visionkit"
TORCHSCRIPT_METADATA = "visionkit.json"
ONNX_OPSET = 17  # RoiAlign's coordinate_transformation_mode needs >= 16
GRAPH_CAPTURE_OPSET = 18  # the lowest the torch.export-based exporter writes


class DetectorExport(nn.Module):
    """One ``[3, H, W]`` 0–1 image in, ``(boxes, labels, scores)`` tensors out (eval mode)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Detections of ``image`` as three tensors instead of a list of dicts."""
        detection = self.detector([image])[0]
        return detection["boxes"], detection["labels"], detection["scores"]


@dataclass
class Exportable:
    """A module to trace, its sample input, its I/O names (ONNX) and the metadata to embed."""

    module: nn.Module
    sample: Tensor
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    metadata: dict[str, Any]
    graph_capture: bool = False  # exportable with torch.export (no data-dependent Python branches)


def exportable(ckpt: str | os.PathLike) -> Exportable:
    """What to export from a classification or detection checkpoint (task read from its metadata)."""
    loaded = load_checkpoint_model(ckpt)
    if isinstance(loaded, LoadedDetector):
        return detector_exportable(loaded)
    return _classifier_exportable(loaded)


def _classifier_exportable(loaded: LoadedClassifier) -> Exportable:
    size = loaded.image_size
    sample = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    metadata = {"task": "classification", "input": f"normalised float [B, 3, {size}, {size}]",
                "preprocess": classification_eval_steps(size, loaded.mean, loaded.std,
                                                        crop_fraction=loaded.crop_fraction),
                "outputs": ["logits"], "classes": loaded.classes, "image_size": size,
                "crop_fraction": loaded.crop_fraction, "mean": loaded.mean, "std": loaded.std}
    return Exportable(loaded.model, sample, ["image"], ["logits"],
                      {"image": {0: "batch"}, "logits": {0: "batch"}}, metadata, graph_capture=True)


def detector_exportable(loaded: LoadedDetector) -> Exportable:
    """What to export from a loaded detector (traced on a ``min_size`` square; any size runs)."""
    if getattr(loaded.model, "proposal_generator", None) is not None:
        raise ConfigError(f"{loaded.source}: {loaded.model.config.get('name')} computes its proposals "
                          f"with selective search (numpy, outside the graph), so it cannot be exported; "
                          f"export a Faster R-CNN, or run it with `visionkit detect predict`")
    transform = loaded.model.transform
    if transform.fixed_size is not None:
        width, height = transform.fixed_size
    else:  # resized to itself: no padding, so the pooler infers exact scales from it
        height = width = min(transform.min_size[-1], transform.max_size)
    sample = torch.rand(3, height, width, generator=torch.Generator().manual_seed(0))
    outputs = ["boxes", "labels", "scores"]
    heads = loaded.model.roi_heads
    soft_nms = None if heads.soft_nms == "none" else {  # traced, the detector leaves it out
        "method": heads.soft_nms, "sigma": heads.soft_nms_sigma, "iou_threshold": heads.nms_thresh}
    metadata = {"task": "detection", "input": "float [3, H, W] in 0-1, any H and W",
                "preprocess": ["RGB image as float / 255, CHW; the file resizes and normalises "
                               "it itself (min_size/max_size below); boxes come back in the "
                               "input image's pixels"],
                "min_size": list(transform.min_size), "max_size": transform.max_size,
                "box_score_thresh": heads.score_thresh,
                "detections_per_img": heads.detections_per_img,
                "soft_nms": soft_nms,
                "outputs": outputs, "classes": loaded.classes,
                "category_ids": loaded.category_ids}
    dynamic_axes = {"image": {1: "height", 2: "width"}, **{name: {0: "detections"} for name in outputs}}
    return Exportable(DetectorExport(loaded.model).eval(), sample, ["image"], outputs,
                      dynamic_axes, metadata)


def apply_exported_soft_nms(soft_nms: dict[str, Any], boxes: Tensor, labels: Tensor, scores: Tensor,
                            score_thresh: float, max_det: int) -> tuple[Tensor, Tensor, Tensor]:
    """A Soft-NMS detector file's outputs (every candidate) finished as the detector finishes
    them when loaded with ``box_score_thresh=score_thresh, box_detections_per_img=max_det``:
    `batched_soft_nms` with the metadata's ``soft_nms`` settings."""
    keep, lowered = batched_soft_nms(
        boxes, scores, labels, method=soft_nms["method"], sigma=soft_nms["sigma"],
        iou_threshold=soft_nms["iou_threshold"], score_threshold=soft_nms_min_score(score_thresh),
        max_kept=max_det)
    return boxes[keep], labels[keep], lowered


def default_output(ckpt: str | os.PathLike, fmt: str, int8: bool = False) -> Path:
    """``<ckpt stem>.onnx`` (``.int8.onnx``) or ``<ckpt stem>.torchscript.pt`` beside the checkpoint."""
    path = Path(ckpt)
    return path.with_name(path.stem + (".int8" if int8 else "") + SUFFIXES[fmt])


def export_model(ckpt: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *,
                 int8_calib: str | os.PathLike | None = None, calib_count: int = 300) -> Path:
    """Write the checkpoint's model as ``fmt`` ("onnx" or "torchscript") to ``out`` atomically.

    With ``int8_calib`` (a folder of images or a COCO JSON) the ONNX file is quantized to int8,
    calibrated on up to ``calib_count`` of its images (`visionkit.inference.quantize`).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if int8_calib is not None and fmt != "onnx":
        raise ConfigError(f"int8 export writes ONNX (ONNX Runtime's int8 kernels), not {fmt}: "
                          f"use --format onnx")
    if fmt == "onnx":
        require_onnx()
    out = Path(out) if out is not None else default_output(ckpt, fmt, int8_calib is not None)
    if int8_calib is not None:
        return _export_int8(ckpt, out, int8_calib, calib_count)
    target = exportable(ckpt)
    target.metadata.update(format=fmt, visionkit_version=__version__, checkpoint_sha256=file_sha256(ckpt))
    write = write_onnx if fmt == "onnx" else write_torchscript
    # Expected, nothing to act on: the tracer's notes on the Python numbers it fixes (the
    # pooler's power-of-two scales, the same for every size; see the module docstring), torch's
    # deprecation of TorchScript and of the TorchScript-based ONNX exporter (both used on
    # purpose, see write_onnx), and the ONNX exporter's caution about negative gather indices
    # (ours come from topk and arange).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "To copy construct from a tensor")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", "Exporting aten::index operator of advanced indexing")
        write(target, out)
    return out


def _export_int8(ckpt: str | os.PathLike, out: Path, calib: str | os.PathLike, count: int) -> Path:
    """The fp32 ONNX export of ``ckpt`` quantized to int8 into ``out``, calibrated on ``calib``."""
    import tempfile

    from visionkit.inference import quantize

    paths = quantize.calibration_images(calib, count)  # before the export: a bad --calib stops early
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vk_export_", dir=out.parent) as tmp:
        fp32 = export_model(ckpt, "onnx", Path(tmp) / "fp32.onnx")
        meta = read_export_metadata(fp32)
        if meta["task"] == "classification":  # the preprocessing the file's metadata names
            transform = classification_eval_transform(meta["image_size"], meta["mean"], meta["std"],
                                                      crop_fraction=meta["crop_fraction"])
            inputs = quantize.classifier_inputs(paths, transform)
        else:
            inputs = quantize.detector_inputs(paths)
        quantize.quantize_onnx(fp32, out, inputs, detector=meta["task"] == "detection")
    return out


def write_torchscript(target: Exportable, out: Path) -> None:
    """Trace ``target.module`` and save it with the metadata as extra file ``visionkit.json``."""
    traced = torch.jit.trace(target.module, (target.sample,), check_trace=False)
    extra = {TORCHSCRIPT_METADATA: json.dumps(target.metadata)}
    atomic_write_with(out, lambda tmp: torch.jit.save(traced, tmp, _extra_files=extra))


def require_onnx() -> None:
    """Raise a one-line `ConfigError` naming the extra when the ``onnx`` package is missing."""
    if importlib.util.find_spec("onnx") is None:
        raise ConfigError("ONNX export needs the onnx package (and onnxruntime to run the file): "
                          "pip install 'visionkit[export]'")


def write_onnx(target: Exportable, out: Path) -> None:
    """Export ``target.module`` to ONNX with its metadata as the ONNX metadata property ``visionkit``.

    Classifiers go through torch's graph-capturing exporter (``torch.export``, ``dynamo=True``)
    where onnxscript is installed. Detectors, and classifiers without it, go through the
    TorchScript-based exporter (``dynamo=False``): it traces, so it keeps the detector's
    data-dependent detection count, and torchvision registers its nms/roi_align for it; the
    graph-capturing one stops at the detector's data-dependent branches (per-class NMS).
    """
    import onnx

    # The export extra pins torch >= 2.5, which has both exporters; onnxscript runs the new one.
    dynamo = target.graph_capture and importlib.util.find_spec("onnxscript") is not None
    target.metadata["onnx_exporter"] = "torch.export" if dynamo else "torchscript"
    if dynamo:
        dynamic = tuple({axis: torch.export.Dim(name, min=1) for axis, name in
                         target.dynamic_axes.get(input_name, {}).items()}
                        for input_name in target.input_names)
        program = torch.onnx.export(target.module, (target.sample,), dynamo=True, verbose=False,
                                    opset_version=GRAPH_CAPTURE_OPSET, dynamic_shapes=dynamic,
                                    input_names=target.input_names,
                                    output_names=target.output_names)
        model = program.model_proto
    else:
        buffer = io.BytesIO()
        torch.onnx.export(target.module, (target.sample,), buffer, dynamo=False,
                          opset_version=ONNX_OPSET, input_names=target.input_names,
                          output_names=target.output_names, dynamic_axes=target.dynamic_axes)
        model = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(target.metadata)})
    atomic_write_with(out, lambda tmp: onnx.save(model, tmp))


def read_export_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata embedded by `export_model` in a ``.onnx`` or TorchScript file."""
    path = Path(path)
    if is_onnx_file(path):
        import onnx

        props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        text = props.get(METADATA_KEY)
    else:
        extra = {TORCHSCRIPT_METADATA: ""}
        torch.jit.load(path, map_location="cpu", _extra_files=extra)
        text = extra[TORCHSCRIPT_METADATA] or None
    if text is None:
        raise ConfigError(f"{path}: no visionkit metadata (not written by `visionkit export`)")
    return json.loads(text)
