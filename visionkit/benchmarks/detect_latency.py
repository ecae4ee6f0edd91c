"""`detect-latency`: our Faster R-CNN vs torchvision's with the same weights and options, per stage.

For each ``model:size`` pair, torchvision's detector is built with random weights made
non-trivial (BatchNorm statistics from random images, a predictor scaled so scores spread),
its state dict is loaded into ours, and both run on the same random images in eval mode, one
image per call, alternating, after a warm-up (fast models get more passes, so that each pair is
timed for about ``--min-seconds``). "ours" is the detector as built (its detections
must equal torchvision's), "ours_inference" the same after `optimize_for_inference` (BatchNorm
folded into the convolutions, optionally channels-last: what `detect predict` runs; its
backbone features are compared with torchvision's as the largest error relative to the
largest value). Reported per model: median seconds per image, ratios to torchvision overall
and per stage (transform, backbone, rpn, roi_heads; timed with forward hooks). With
``--onnxruntime``, the inference variant exported as `visionkit export` writes it runs in ONNX
Runtime too (its ratio to the inference variant, and the share of that variant's detections it
reproduces: with random weights its rounding picks other near-tied proposals, so equality is
tested on trained weights instead, in tests/inference/test_onnx_backend.py).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

STAGES = ("transform", "backbone", "rpn", "roi_heads")


def torchvision_sizes(min_size: int) -> dict[str, int]:
    """``min_size`` and the ``max_size`` torchvision's detectors pair with it (1333 at 800)."""
    return {"min_size": min_size, "max_size": round(min_size * 1333 / 800)}


def non_trivial(reference: nn.Module) -> nn.Module:
    """BatchNorm statistics from random images and a predictor scaled to the box features.

    With torchvision's random init the features vanish or explode and every score is ~1/91;
    this gives spread-out scores and boxes that move off their proposals.
    """
    for module in reference.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average: one batch sets the statistics
    reference.backbone.train()
    with torch.no_grad():
        reference.backbone(torch.rand(2, 3, 256, 320))
    reference.eval()
    features = []
    hook = reference.roi_heads.box_head.register_forward_hook(lambda m, i, out: features.append(out))
    with torch.no_grad():
        reference([torch.rand(3, 200, 240)])
    hook.remove()
    norm = float(features[0].norm(dim=1).mean())
    with torch.no_grad():
        reference.roi_heads.box_predictor.cls_score.weight.normal_(0, 3.0 / norm)
        reference.roi_heads.box_predictor.bbox_pred.weight.normal_(0, 1.0 / norm)
    return reference


def matched_detections(ours: dict, theirs: dict, score_tol: float = 1e-4, box_tol: float = 1e-3) -> int:
    """How many of ``theirs`` have their own equal detection (label, score, box) among ``ours``.

    Matched one to one, not in sorted order: float rounding may swap detections whose scores tie.
    """
    free = torch.ones(len(ours["scores"]), dtype=torch.bool)
    matched = 0
    for score, label, box in zip(theirs["scores"], theirs["labels"], theirs["boxes"], strict=True):
        same = (free & (ours["labels"] == label) & ((ours["scores"] - score).abs() <= score_tol)
                & ((ours["boxes"] - box).abs().amax(1) <= box_tol))
        if same.any():
            free[torch.where(same)[0][0]] = False
            matched += 1
    return matched


def same_detections(ours: dict, theirs: dict, score_tol: float = 1e-4, box_tol: float = 1e-3) -> bool:
    """Each of ``theirs`` has its own equal detection among ``ours`` and none is left over."""
    return (len(ours["scores"]) == len(theirs["scores"])
            and matched_detections(ours, theirs, score_tol, box_tol) == len(theirs["scores"]))


class StageTimer:
    """Forward hooks that add up the seconds each named child module spends, per call."""

    def __init__(self, model: nn.Module, stages: tuple[str, ...] = STAGES) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.handles = []
        for name in stages:
            module = getattr(model, name)
            started: list[float] = []
            self.handles.append(module.register_forward_pre_hook(
                lambda *_, s=started: s.append(time.perf_counter())))
            self.handles.append(module.register_forward_hook(
                lambda *_, s=started, n=name: self.seconds.__setitem__(
                    n, self.seconds[n] + time.perf_counter() - s.pop())))

    def take(self) -> dict[str, float]:
        """Seconds per stage since the last call."""
        out, self.seconds = dict(self.seconds), defaultdict(float)
        return out


def onnx_runner(detector: nn.Module, folder: Path) -> Callable[[list[torch.Tensor]], list[dict]]:
    """``detector`` exported as `visionkit export` writes it, run by ONNX Runtime (every detection
    the file keeps)."""
    from visionkit.inference.detector_loading import LoadedDetector
    from visionkit.inference.export import detector_exportable, write_onnx
    from visionkit.inference.onnx_backend import OnnxDetectorModel, onnx_session

    target = detector_exportable(LoadedDetector(detector, [str(i) for i in range(1, 91)],
                                                list(range(1, 91)), "benchmark"))
    path = folder / "detector.onnx"
    with torch.no_grad(), warnings.catch_warnings():  # the exporter's notes (see export_model)
        warnings.simplefilter("ignore")
        write_onnx(target, path)
    return OnnxDetectorModel(onnx_session(path), score_thresh=0.0, max_det=10**6)


def compare(name: str, size: int, images: list[torch.Tensor], repeats: int, warmup: int,
            channels_last: bool = True, min_seconds: float = 0.0, onnxruntime: bool = False) -> dict:
    """Time one detector pair on ``images`` (and with ``onnxruntime`` the inference variant's ONNX
    file in ONNX Runtime); the JSON-ready dict of one model."""
    import torchvision

    from visionkit.detection import create_detector
    from visionkit.detection.inference_rewrites import fast_kernels_enabled, optimize_for_inference

    options = torchvision_sizes(size)
    torch.manual_seed(0)
    reference = non_trivial(torchvision.models.get_model(name, weights=None, weights_backbone=None,
                                                         **options)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.pth"
        torch.save(reference.state_dict(), path)
        ours = create_detector(name, 91, pretrained=path, **options).eval()
        fast = optimize_for_inference(create_detector(name, 91, pretrained=path, **options),
                                      channels_last=channels_last)
        models: dict[str, Callable] = {"ours": ours, "ours_inference": fast, "torchvision": reference}
        if onnxruntime:
            models["onnxruntime"] = onnx_runner(fast, Path(tmp))
    timers = {k: StageTimer(m) for k, m in models.items() if isinstance(m, nn.Module)}
    totals: dict[str, list[float]] = {k: [] for k in models}
    stages: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in models}
    same, onnx_matched = True, []
    with torch.inference_mode():
        started = time.perf_counter()
        for _ in range(warmup):
            for model in models.values():
                model([images[0]])
        if warmup:  # fast models get more samples: passes estimated from the warm-up
            per_pass = (time.perf_counter() - started) / warmup * len(images)
            repeats = max(repeats, math.ceil(min_seconds / per_pass))
        for timer in timers.values():
            timer.take()
        for _ in range(repeats):
            for image in images:
                outputs = {}
                for key, model in models.items():
                    started = time.perf_counter()
                    outputs[key] = model([image])[0]
                    totals[key].append(time.perf_counter() - started)
                    for stage, seconds in (timers[key].take() if key in timers else {}).items():
                        stages[key][stage].append(seconds)
                same = same and same_detections(outputs["ours"], outputs["torchvision"])
                if onnxruntime:  # ONNX Runtime's rounding may pick other near-tied proposals
                    reference_count = max(len(outputs["ours_inference"]["scores"]), 1)
                    onnx_matched.append(matched_detections(outputs["onnxruntime"], outputs["ours_inference"],
                                                           box_tol=1e-2) / reference_count)
        # Folding changes float rounding, and with random weights the RPN's near-tied scores
        # then pick other proposals: the inference variant is compared on the features.
        batch = ours.transform(images[:1])[0]
        expected, got = reference.backbone(batch), fast.backbone(batch)
        feature_error = max(float((got[k] - v).abs().max() / v.abs().max()) for k, v in expected.items())
    median = {k: statistics.median(v) for k, v in totals.items()}
    per_stage = {stage: {k: round(statistics.median(stages[k][stage]), 4) for k in timers}
                 for stage in STAGES}
    for values in per_stage.values():
        for key in ("ours", "ours_inference"):
            values[f"{key}_ratio"] = round(values[key] / values["torchvision"], 3)
    return {"model": name, "min_size": size, "max_size": options["max_size"],
            **{f"{k}_s": round(v, 4) for k, v in median.items()},
            "ratio": round(median["ours"] / median["torchvision"], 3),
            "inference_ratio": round(median["ours_inference"] / median["torchvision"], 3),
            **({"onnxruntime_ratio_to_inference": round(median["onnxruntime"] / median["ours_inference"], 3),
                "onnxruntime_ratio": round(median["onnxruntime"] / median["torchvision"], 3),
                "onnxruntime_matched_share": round(statistics.mean(onnx_matched), 4)} if onnxruntime else {}),
            "stages": per_stage, "same_detections": same, "inference_feature_error": feature_error,
            "channels_last": channels_last, "fast_kernels": fast_kernels_enabled(),
            "images": len(images), "repeats": repeats}


def run(argv: list[str]) -> dict:
    """Parse options, time each model pair, return the JSON dict."""
    parser = argparse.ArgumentParser(prog="visionkit benchmark detect-latency", description=__doc__)
    parser.add_argument("--models", nargs="+",
                        default=["fasterrcnn_resnet50_fpn:800", "fasterrcnn_mobilenet_v3_large_fpn:320"],
                        help="torchvision detector names with the min_size to run at (name:size)")
    parser.add_argument("--images", type=int, default=3, help="random images, 480x640")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=2, help="passes over the images (at least)")
    parser.add_argument("--min-seconds", type=float, default=10.0,
                        help="more passes until the timed calls of each model pair take about this "
                             "long (estimated from the warm-up; none with --warmup 0)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--onnxruntime", action="store_true",
                        help="also time the inference variant exported to ONNX, in ONNX Runtime")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="the inference variant keeps contiguous (NCHW) convolution weights")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    images = [torch.rand(3, args.height, args.width, generator=g) for _ in range(args.images)]
    results = []
    for spec in args.models:
        name, _, size = spec.partition(":")
        results.append(compare(name, int(size or 800), images, args.repeats, args.warmup,
                               args.channels_last, args.min_seconds, args.onnxruntime))
    return {"benchmark": "detect-latency", "device": "cpu", "threads": torch.get_num_threads(),
            "image": [args.height, args.width], "results": results}
