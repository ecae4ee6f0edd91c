"""`coco-eval` benchmark: our fast COCO bbox backend vs pycocotools vs faster-coco-eval.

Each evaluator gets the same in-memory GT dict and results list (fresh copies, outside the
timing: the other two modify their inputs) and runs to the 12 summary stats. faster-coco-eval is
a peer in this benchmark only, imported lazily and reported as unavailable when not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np

from visionkit.evaluation.coco import evaluate_coco

TARGETS = {"fast_vs_pycocotools": 5.0, "fast_vs_faster_coco_eval": 1.0}


def synthetic_coco(num_images: int = 5000, dets_per_image: int = 100, num_categories: int = 80,
                   seed: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Seeded COCO-like GT (0-14 objects per image, 3% crowds, sides 4-400 px) and exactly
    ``dets_per_image`` detections per image: half jittered GTs, half random boxes, with
    3-decimal scores (so many ties)."""
    rng = np.random.default_rng(seed)
    n_gt = rng.integers(0, 15, num_images)
    g_img = np.repeat(np.arange(num_images), n_gt)
    g_side = np.exp(rng.uniform(np.log(4), np.log(400), (len(g_img), 2)))
    g_xy = rng.uniform(0, 600, (len(g_img), 2))
    g_cat = rng.integers(1, num_categories + 1, len(g_img))
    crowd = rng.random(len(g_img)) < 0.03

    d_img = np.repeat(np.arange(num_images), dets_per_image)
    d_side = np.exp(rng.uniform(np.log(4), np.log(400), (len(d_img), 2)))
    d_xy = rng.uniform(0, 600, (len(d_img), 2))
    d_cat = rng.integers(1, num_categories + 1, len(d_img))
    near = (rng.random(len(d_img)) < 0.5) & (n_gt[d_img] > 0)
    src = (np.cumsum(n_gt) - n_gt)[d_img[near]] + (rng.random(near.sum()) * n_gt[d_img[near]]
                                                   ).astype(np.int64)
    d_xy[near] = g_xy[src] + g_side[src] * rng.normal(0, 0.1, (len(src), 2))
    d_side[near] = g_side[src] * np.exp(rng.normal(0, 0.15, (len(src), 2)))
    d_cat[near] = g_cat[src]
    scores = np.round(rng.random(len(d_img)), 3)

    g_box = np.concatenate([g_xy, g_side], axis=1)
    gt = {
        "images": [{"id": i + 1, "width": 640, "height": 480} for i in range(num_images)],
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, num_categories + 1)],
        "annotations": [
            {"id": n + 1, "image_id": i + 1, "category_id": c, "bbox": b, "area": b[2] * b[3],
             "iscrowd": k}
            for n, (i, c, b, k) in enumerate(zip(g_img.tolist(), g_cat.tolist(), g_box.tolist(),
                                                 crowd.astype(int).tolist(), strict=True))],
    }
    results = [{"image_id": i + 1, "category_id": c, "bbox": b, "score": s}
               for i, c, b, s in zip(d_img.tolist(), d_cat.tolist(),
                                     np.concatenate([d_xy, d_side], axis=1).tolist(),
                                     scores.tolist(), strict=True)]
    return gt, results


def run(argv: list[str]) -> dict[str, Any]:
    """Time the three evaluators on synthetic data of the requested size; speedups as ratios."""
    parser = argparse.ArgumentParser(
        prog="visionkit benchmark coco-eval",
        description="COCO bbox mAP timings: fast backend, pycocotools, faster-coco-eval.")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dets", type=int, default=100, help="detections per image")
    parser.add_argument("--categories", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per evaluator; best is kept")
    parser.add_argument("--skip", action="append", default=[], choices=list(_EVALUATORS),
                        help="leave an evaluator out (repeatable)")
    args = parser.parse_args(argv)
    gt, results = synthetic_coco(args.images, args.dets, args.categories, args.seed)

    seconds: dict[str, float | str] = {}
    stats: dict[str, np.ndarray] = {}
    for name, evaluator in _EVALUATORS.items():
        if name in args.skip:
            continue
        if name == "faster_coco_eval" and _version("faster-coco-eval") is None:
            seconds[name] = "unavailable"
            continue
        best = float("inf")
        for _ in range(args.repeat):
            g, r = _fresh(gt, results)
            start = time.perf_counter()
            stats[name] = evaluator(g, r)
            best = min(best, time.perf_counter() - start)
        seconds[name] = round(best, 3)

    def ratio(slow: str) -> float | None:
        fast, other = seconds.get("fast"), seconds.get(slow)
        ok = isinstance(fast, float) and isinstance(other, float) and fast > 0
        return round(other / fast, 2) if ok else None

    return {
        "benchmark": "coco-eval",
        "data": {"images": args.images, "detections": len(results),
                 "gt_annotations": len(gt["annotations"]), "categories": args.categories,
                 "seed": args.seed},
        "seconds": seconds,
        "speedup": {"fast_vs_pycocotools": ratio("pycocotools"),
                    "fast_vs_faster_coco_eval": ratio("faster_coco_eval")},
        "targets": TARGETS,
        "max_abs_stat_diff_vs_pycocotools": {
            name: float(np.abs(s - stats["pycocotools"]).max())
            for name, s in stats.items() if name != "pycocotools" and "pycocotools" in stats},
        "fast_stats": ({k: round(float(v), 6) for k, v in zip(
            ("AP", "AP50", "AP75"), stats["fast"][:3], strict=True)} if "fast" in stats else None),
        "versions": {p: _version(p) for p in ("numpy", "pycocotools", "faster-coco-eval")},
        "cpu_count": os.cpu_count(),
    }


def _fast(gt: dict[str, Any], results: list[dict[str, Any]]) -> np.ndarray:
    """The 12 stats from our fast backend."""
    return np.array(list(evaluate_coco(gt, results, backend="fast").stats.values()))


def _pycocotools(gt: dict[str, Any], results: list[dict[str, Any]]) -> np.ndarray:
    """The 12 stats from pycocotools (printing silenced)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return _run_cocoeval(COCO, COCOeval, gt, results)


def _faster_coco_eval(gt: dict[str, Any], results: list[dict[str, Any]]) -> np.ndarray:
    """The 12 stats from faster-coco-eval's C++ COCOeval."""
    from faster_coco_eval import COCO, COCOeval_faster

    return _run_cocoeval(COCO, COCOeval_faster, gt, results)


def _run_cocoeval(coco_cls: Any, eval_cls: Any, gt: dict[str, Any],
                  results: list[dict[str, Any]]) -> np.ndarray:
    """Build a COCO of ``gt``, load ``results`` and run evaluate/accumulate/summarize."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_cls()
        coco.dataset = gt
        coco.createIndex()
        ev = eval_cls(coco, coco.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, dtype=np.float64)


_EVALUATORS: dict[str, Callable[[dict[str, Any], list[dict[str, Any]]], np.ndarray]] = {
    "fast": _fast,
    "pycocotools": _pycocotools,
    "faster_coco_eval": _faster_coco_eval,
}


def _fresh(gt: dict[str, Any], results: list[dict[str, Any]]
           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Copies deep enough that an evaluator writing into annotation dicts changes nothing here."""
    return ({"images": list(gt["images"]), "categories": [dict(c) for c in gt["categories"]],
             "annotations": [dict(a) for a in gt["annotations"]]},
            [dict(r) for r in results])


def _version(package: str) -> str | None:
    """Installed version of ``package``, or None when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
