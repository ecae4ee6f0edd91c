"""Post-training static int8 quantization of an exported ONNX file with ONNX Runtime's quantizer.

`quantize_onnx` takes the fp32 file `visionkit export --format onnx` writes and writes a QDQ
file ONNX Runtime runs with int8 kernels (QLinearConv, QGemm, ...): weights int8 per output
channel, activations uint8 with ranges observed (min/max) on calibration images that go through
the model's own preprocessing. A classifier is quantized whole. A detector's backbone (body and
FPN) and RPN head are, and its box arithmetic stays in float: decoding, clipping, NMS and the
box head's regression, where 1/255 of a coordinate range would move boxes by pixels.

Activations are uint8 and weights int8 (ONNX Runtime's U8S8, its fastest x86 kernels with
AVX512-VNNI or AVX-VNNI). On an x86 CPU with AVX2 but no VNNI these kernels can saturate
intermediate sums (ONNX Runtime's documentation); measure accuracy on such a machine.

Why ONNX Runtime's quantizer: PyTorch 2's export quantization (PT2E) left torch for torchao,
and needs torch.compile's C++ build to run int8 kernels on x86; the exported file needs
neither, and `classify predict` / `detect predict` already run ``.onnx`` files.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionkit.data.images import read_image
from visionkit.data.sources import expand_image_sources
from visionkit.errors import ConfigError
from visionkit.fileio import atomic_write_with

# Node-name prefixes (TorchScript-based exporter, module paths) quantized in a detector file.
DETECTOR_QUANTIZED_SCOPES = ("/detector/backbone/", "/detector/rpn/head/")


def calibration_images(source: str | os.PathLike, count: int, seed: int = 0) -> list[Path]:
    """Up to ``count`` image files for calibration, a seeded sample (sorted first, so the same
    files whatever the file system's order): from a folder (recursively) or a COCO JSON's
    ``images`` (file names relative to the JSON's folder)."""
    source = Path(source)
    if source.suffix.lower() == ".json":
        from visionkit.inference.detection import read_gt  # the inference layer's COCO reader

        paths = sorted(read_gt(source, None)[0])
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise ConfigError(f"{source}: calibration image {missing[0]} (images[].file_name) "
                              f"does not exist; {len(missing)} of {len(paths)} missing")
    else:
        paths = expand_image_sources([str(source)])
    if count < 1:
        raise ConfigError(f"--calib-count must be at least 1, got {count}")
    if not paths:
        raise ConfigError(f"{source}: no calibration image (its images[] is empty)")
    if len(paths) > count:
        paths = sorted(random.Random(seed).sample(paths, count))
    return paths


def classifier_inputs(paths: Sequence[Path], transform: Any, batch_size: int = 16
                      ) -> Iterator[np.ndarray]:
    """Normalised ``[B, 3, S, S]`` float32 batches of ``paths`` through ``transform`` (the
    checkpoint's evaluation preprocessing)."""
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        batch = torch.stack([transform(image=read_image(p))["image"] for p in chunk])
        yield batch.numpy().astype(np.float32)


def detector_inputs(paths: Sequence[Path]) -> Iterator[np.ndarray]:
    """One float32 ``[3, H, W]`` 0–1 image at a time, as an exported detector takes it."""
    for path in paths:
        yield (read_image(path).transpose(2, 0, 1).astype(np.float32) / 255.0)


def detector_nodes_to_quantize(model: Any) -> list[str]:
    """Names of a detector graph's nodes in the quantized scopes (backbone, FPN, RPN head)."""
    names = [node.name for node in model.graph.node if node.name.startswith(DETECTOR_QUANTIZED_SCOPES)]
    if not names:
        raise ConfigError("no backbone node found in the detector file (node names under "
                          f"{', '.join(DETECTOR_QUANTIZED_SCOPES)}); was it written by visionkit export?")
    return names


class _Reader:
    """ONNX Runtime's calibration-reader protocol over an iterator of input arrays."""

    def __init__(self, inputs: Iterator[np.ndarray], name: str = "image") -> None:
        self.inputs, self.name, self.count = inputs, name, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        array = next(self.inputs, None)
        if array is None:
            return None
        self.count += array.shape[0] if array.ndim == 4 else 1  # images, batched or not
        return {self.name: array}

    def rewind(self) -> None:  # one pass: the MinMax calibrator reads the data once
        pass


def quantize_onnx(fp32: str | os.PathLike, out: str | os.PathLike, inputs: Iterator[np.ndarray], *,
                  detector: bool) -> dict[str, Any]:
    """Write the int8 QDQ version of the ONNX file ``fp32`` to ``out``; ranges from ``inputs``.

    Args:
        fp32: an ONNX file written by `visionkit export` (its metadata is carried over).
        out: where the int8 file goes (written whole or not at all).
        inputs: calibration inputs, each what the file's ``image`` input takes.
        detector: quantize only the backbone, FPN and RPN head (see the module docstring).

    Returns:
        What was done, for the file's metadata: quantizer, formats, calibration count.
    """
    try:
        import onnx
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ConfigError("int8 export needs onnx and onnxruntime: pip install 'visionkit[export]'") from None
    fp32, out = Path(fp32), Path(out)
    source = onnx.load(fp32)
    props = {p.key: p.value for p in source.metadata_props}
    reader = _Reader(inputs)
    with tempfile.TemporaryDirectory(prefix="vk_int8_", dir=out.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # ONNX Runtime's recommended step: fold constants and infer shapes before quantizing
        # (symbolic shape inference does not follow a detector's data-dependent shapes)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=detector)
        nodes = detector_nodes_to_quantize(onnx.load(prepared)) if detector else None
        written = Path(tmp) / "int8.onnx"
        quantize_static(str(prepared), str(written), reader, quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_quantize=nodes,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"CalibTensorRangeSymmetric": False})
        model = onnx.load(written)
        summary = {"quantizer": "onnxruntime.quantization.quantize_static", "format": "QDQ",
                   "weights": "int8 per channel", "activations": "uint8 (min/max calibration)",
                   "calibration_images": reader.count,
                   "scope": "backbone, FPN, RPN head" if detector else "whole model"}
        meta = json.loads(props.get("visionkit", "{}"))
        meta["int8"] = summary
        onnx.helper.set_model_props(model, {**props, "visionkit": json.dumps(meta)})
        atomic_write_with(out, lambda path: onnx.save(model, path))
    return summary
