"""`tools/benchmark.py ops`: time visionkit.ops next to torchvision.ops in the same run.

Cases: batched_nms (10k boxes, 80 classes), box_iou (1000 x 1000), roi_align and roi_pool (1000 RoIs on a
256 x 50 x 68 map, 7 x 7, stride 16). Each case runs ours and torchvision's alternately,
``--repeats`` times after ``--warmup`` runs, and reports median milliseconds and
``ratio = ours / torchvision`` (below 1: ours is faster), plus whether the outputs agree.
CPU runs use one thread by default (``--threads``): steadier on shared machines, where
multi-threaded kernels mostly measure the neighbours' load.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
import torchvision.ops as tvops

from visionkit import ops
from visionkit.device import auto_device


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="visionkit benchmark ops", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per function (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads during the run; 0 keeps torch's default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nms-boxes", type=int, default=10_000)
    parser.add_argument("--nms-classes", type=int, default=80)
    parser.add_argument("--iou-boxes", type=int, default=1000, help="N for the N x N IoU matrix")
    parser.add_argument("--rois", type=int, default=1000)
    parser.add_argument("--feature", default="256x50x68", help="RoIAlign map as CxHxW")
    parser.add_argument("--roi-sweep", type=int, nargs="*", default=[],
                        help="also time roi_align on RoIs whose sides reach each of these many "
                             "cells, at scale 1/8 (Fast R-CNN's single map), a fifth of them "
                             "reaching past the map's edge, e.g. 4 8 16 25 32")
    return parser.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _compare(
    ours: Callable[[], torch.Tensor],
    theirs: Callable[[], torch.Tensor],
    device: torch.device,
    repeats: int,
    warmup: int,
    agree: Callable[[torch.Tensor, torch.Tensor], bool] | None = None,
) -> dict:
    """Median times of two functions run alternately, their ratio and whether outputs agree."""
    for _ in range(warmup):
        ours(), theirs()
    times: dict[str, list[float]] = {"ours": [], "torchvision": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("torchvision", theirs)):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    a, b = ours(), theirs()
    if agree is not None:
        same = agree(a, b)
    else:
        same = a.shape == b.shape and torch.allclose(a, b, rtol=0, atol=1e-5)
    ours_ms = statistics.median(times["ours"])
    theirs_ms = statistics.median(times["torchvision"])
    return {
        "ours_ms": round(ours_ms, 4),
        "torchvision_ms": round(theirs_ms, 4),
        "ratio": round(ours_ms / theirs_ms, 3) if theirs_ms > 0 else None,
        "same_result": same,
    }


def _same_kept(a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor) -> bool:
    """Same kept boxes in the same score order (equal scores may come in either order)."""
    return bool(
        torch.equal(a.sort().values, b.sort().values) and torch.equal(scores[a], scores[b])
    )


def _boxes(n: int, size: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 4 + 4
    return torch.cat((xy, xy + wh), dim=1).to(device)


def sweep_rois(count: int, cells: int, height: int, width: int, scale: float,
               g: torch.Generator) -> torch.Tensor:
    """``count`` RoIs ``[count, 4]`` (image pixels) with sides uniform in 1..``cells`` map cells
    on a ``height`` x ``width`` map at ``scale``; a fifth start inside and reach past its edge."""
    side = (torch.rand(count, 2, generator=g) * (cells - 1) + 1) / scale  # [count, 2] px
    corner = torch.rand(count, 2, generator=g) * torch.tensor([width, height]) / scale  # [count, 2]
    past = torch.arange(count) % 5 == 0  # [count]: pushed towards the bottom-right edge
    corner[past] = (torch.tensor([width, height]) / scale - side[past] / 2).clamp(min=0)
    return torch.cat((corner, corner + side), dim=1)


def _roi_sweep_entry(cells: int, feats: torch.Tensor, count: int, g: torch.Generator,
                     timing: dict) -> dict:
    height, width = feats.shape[-2:]
    rois = sweep_rois(count, cells, height, width, 1 / 8, g).to(feats.device)
    return {"max_cells": cells, "rois": count, "spatial_scale": 1 / 8, "sampling_ratio": 2,
            **_compare(lambda: ops.roi_align(feats, [rois], 7, 1 / 8, 2),
                       lambda: tvops.roi_align(feats, [rois], 7, 1 / 8, 2), **timing)}


def run(argv: list[str]) -> dict:
    """Time batched_nms, box_iou, roi_align and roi_pool against torchvision; return the JSON dict."""
    args = _parse(argv)
    device = auto_device(args.device)
    threads_before = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, device)
    finally:
        torch.set_num_threads(threads_before)


def _run(args: argparse.Namespace, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(args.seed)
    timing = {"device": device, "repeats": args.repeats, "warmup": args.warmup}
    results: dict[str, dict] = {}

    boxes = _boxes(args.nms_boxes, 800.0, g, device)
    scores = torch.rand(args.nms_boxes, generator=g).to(device)
    labels = torch.randint(0, args.nms_classes, (args.nms_boxes,), generator=g).to(device)
    results["batched_nms"] = {
        "boxes": args.nms_boxes, "classes": args.nms_classes, "iou_threshold": 0.5,
        **_compare(lambda: ops.batched_nms(boxes, scores, labels, 0.5),
                   lambda: tvops.batched_nms(boxes, scores, labels, 0.5), **timing,
                   agree=lambda a, b: _same_kept(a, b, scores)),
    }

    a = _boxes(args.iou_boxes, 800.0, g, device)
    b = _boxes(args.iou_boxes, 800.0, g, device)
    results["box_iou"] = {
        "shape": [args.iou_boxes, args.iou_boxes],
        **_compare(lambda: ops.box_iou(a, b), lambda: tvops.box_iou(a, b), **timing),
    }

    channels, height, width = (int(v) for v in args.feature.lower().split("x"))
    feats = torch.randn(1, channels, height, width, generator=g).to(device)
    image_h, image_w = height * 16, width * 16
    rois = _boxes(args.rois, float(min(image_h, image_w)), g, device)
    rois = ops.clip_boxes_to_image(rois, (image_h, image_w))
    results["roi_align"] = {
        "rois": args.rois, "feature": [channels, height, width], "output_size": [7, 7],
        "spatial_scale": 1 / 16, "sampling_ratio": 2,
        **_compare(lambda: ops.roi_align(feats, [rois], 7, 1 / 16, 2),
                   lambda: tvops.roi_align(feats, [rois], 7, 1 / 16, 2), **timing),
    }

    results["roi_pool"] = {
        "rois": args.rois, "feature": [channels, height, width], "output_size": [7, 7],
        "spatial_scale": 1 / 16,
        **_compare(lambda: ops.roi_pool(feats, [rois], 7, 1 / 16),
                   lambda: tvops.roi_pool(feats, [rois], 7, 1 / 16), **timing),
    }

    if args.roi_sweep:
        results["roi_align_sweep"] = [_roi_sweep_entry(cells, feats, args.rois, g, timing)
                                      for cells in args.roi_sweep]

    return {
        "benchmark": "ops",
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "repeats": args.repeats,
        "results": results,
    }
