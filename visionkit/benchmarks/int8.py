"""int8 against fp32 on one checkpoint (`visionkit benchmark int8`): accuracy or mAP, and latency.

The checkpoint is exported as `visionkit export` writes it, once in fp32 ONNX and once in int8
(``--int8 --calib``, `visionkit.inference.quantize`), and three runners are compared on the
same inputs: PyTorch fp32 (the checkpoint as `classify predict` / `detect predict` run it),
ONNX Runtime fp32 and ONNX Runtime int8.

- A classifier: top-1 accuracy on a folder of class folders (``--val``), and the median time
  of one call at each ``--batch-sizes`` on preprocessed images, the runners alternating.
- A detector: COCO mAP on ``--val-json`` through `detect predict`'s own pipeline, and the
  median time of one image per call, the runners alternating.

Ratios are int8 over each fp32 runner. Calibrate on training images, never the val set.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="visionkit benchmark int8", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a classification or detection checkpoint")
    parser.add_argument("--calib", required=True, help="calibration images: a folder or a COCO JSON")
    parser.add_argument("--calib-count", type=int, default=300)  # below 1: calibration_images stops
    parser.add_argument("--val", default=None, help="classifier: folder of class folders")
    parser.add_argument("--val-json", default=None, help="detector: COCO JSON to score")
    parser.add_argument("--image-root", default=None, help="folder --val-json names images in")
    parser.add_argument("--batch-sizes", default="1,16", help="classifier latency batch sizes")
    parser.add_argument("--latency-images", type=int, default=16, help="images timed per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    return parser


def alternate(runners: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds of each runner's call, the runners taking turns (one warm-up round)."""
    times: dict[str, list[float]] = {k: [] for k in runners}
    for round_ in range(repeats + 1):
        for key, call in runners.items():
            started = time.perf_counter()
            call()
            if round_:
                times[key].append(time.perf_counter() - started)
    return {k: statistics.median(v) for k, v in times.items()}


def ratios(seconds: dict[str, float]) -> dict[str, float]:
    """int8's time over each fp32 runner's."""
    return {"int8_over_onnxruntime_fp32": round(seconds["onnxruntime_int8"] / seconds["onnxruntime_fp32"], 3),
            "int8_over_pytorch_fp32": round(seconds["onnxruntime_int8"] / seconds["pytorch_fp32"], 3)}


def _classifier(args: argparse.Namespace, files: dict[str, Path]) -> dict[str, Any]:
    from visionkit.benchmarks.ensemble import accuracy
    from visionkit.data.sources import expand_image_sources
    from visionkit.inference.classification import load_classifier
    from visionkit.inference.ensemble import ensemble_scores
    from visionkit.inference.quantize import classifier_inputs

    if not args.val:
        raise SystemExit("a classifier needs --val FOLDER (class folders)")
    paths = [str(p) for p in expand_image_sources([args.val])]
    loaded = {k: load_classifier(p) for k, p in files.items()}
    result: dict[str, Any] = {"val_images": len(paths), "accuracy": {}}
    for key, model in loaded.items():
        kept, scores = ensemble_scores([model], paths)
        result["accuracy"][key] = round(accuracy(kept, scores, model.classes), 4)
    timed = [Path(p) for p in paths[:args.latency_images]]  # one batch, as calibration reads them
    images = torch.from_numpy(next(classifier_inputs(timed, loaded["pytorch_fp32"].eval_transform(),
                                                     batch_size=len(timed))))
    result["latency_s"], result["ratio"] = {}, {}
    with torch.inference_mode():
        for size in [int(s) for s in args.batch_sizes.split(",") if s]:
            batches = [images[i:i + size] for i in range(0, len(images) - size + 1, size)] or [images]

            def runner(model: Any, batches: list[torch.Tensor] = batches) -> Callable[[], None]:
                return lambda: [model.model(b) for b in batches]

            seconds = alternate({k: runner(m) for k, m in loaded.items()}, args.repeats)
            per_call = {k: v / len(batches) for k, v in seconds.items()}
            result["latency_s"][f"batch{size}"] = {k: round(v, 5) for k, v in per_call.items()}
            result["ratio"][f"batch{size}"] = ratios(per_call)
    result["accuracy_drop"] = round(result["accuracy"]["onnxruntime_fp32"]
                                    - result["accuracy"]["onnxruntime_int8"], 4)
    return result


def _detector(args: argparse.Namespace, files: dict[str, Path], tmp: Path) -> dict[str, Any]:
    from visionkit.evaluation.coco import evaluate_coco
    from visionkit.inference.detection import detect_to_dir, read_gt
    from visionkit.inference.detector_loading import load_detector
    from visionkit.inference.quantize import detector_inputs

    if not args.val_json:
        raise SystemExit("a detector needs --val-json (and --image-root when its names are elsewhere)")
    result: dict[str, Any] = {"map": {}, "map50": {}}
    for key, path in files.items():
        summary = detect_to_dir(str(path), (), tmp / key, gt=args.val_json, image_root=args.image_root,
                                device="cpu", batch_size=1, save_images=False, progress=False)
        stats = evaluate_coco(args.val_json, summary.out_dir / "results.json").stats
        result["map"][key], result["map50"][key] = round(stats["AP"], 4), round(stats["AP50"], 4)
        result["val_images"] = summary.images
    paths = sorted(read_gt(args.val_json, args.image_root)[0])[:args.latency_images]
    images = [torch.from_numpy(image) for image in detector_inputs(paths)]
    models = {k: load_detector(p, "cpu").model for k, p in files.items()}
    with torch.inference_mode():
        seconds = alternate({k: (lambda m=m: [m([im]) for im in images]) for k, m in models.items()},
                            args.repeats)
    per_image = {k: v / len(images) for k, v in seconds.items()}
    result["latency_s"] = {k: round(v, 4) for k, v in per_image.items()}
    result["ratio"] = ratios(per_image)
    result["map_drop"] = round(result["map"]["onnxruntime_fp32"] - result["map"]["onnxruntime_int8"], 4)
    return result


def run(argv: list[str]) -> dict:
    """Export, quantize, score and time; the JSON dict."""
    args = _parser().parse_args(argv)
    from visionkit.inference.export import export_model, read_export_metadata

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vk_int8_") as tmp:
        folder = Path(tmp)
        files = {"pytorch_fp32": Path(args.ckpt),
                 "onnxruntime_fp32": export_model(args.ckpt, "onnx", folder / "fp32.onnx")}
        begun = time.perf_counter()
        files["onnxruntime_int8"] = export_model(args.ckpt, "onnx", folder / "int8.onnx",
                                                 int8_calib=args.calib, calib_count=args.calib_count)
        quantize_seconds = time.perf_counter() - begun
        meta = read_export_metadata(files["onnxruntime_int8"])
        sizes = {k: p.stat().st_size for k, p in files.items() if k != "pytorch_fp32"}
        if meta["task"] == "classification":
            result = _classifier(args, files)
        else:
            result = _detector(args, files, folder)
    return {"benchmark": "int8", "ckpt": args.ckpt, "task": meta["task"], "calib": args.calib,
            "int8": meta["int8"], "file_bytes": sizes, "quantize_seconds": round(quantize_seconds, 1),
            "threads": torch.get_num_threads(), **result,
            "total_seconds": round(time.perf_counter() - started, 1)}
