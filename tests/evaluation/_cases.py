"""Seeded random COCO cases full of edge cases, and a helper comparing both backends on one."""

from __future__ import annotations

from typing import Any

import numpy as np

from visionkit.evaluation.coco import CocoEvalResult, evaluate_coco
from visionkit.evaluation.coco_params import STAT_NAMES

# Largest allowed difference between the backends' stats (the issue's bar; we expect 0).
STATS_ATOL = 1e-12


def random_case(seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A small GT dict and results list; the seed also picks the flavour of the case.

    Covers: categories without GT, images without GT or without detections, crowd regions,
    objects in all three area ranges and on their bounds, zero-area boxes, integer boxes (IoU
    ties), exact duplicates, few distinct scores (score ties), and groups of more than 100
    detections (maxDets truncation) for some seeds; `area` differs from the box area as in COCO.
    """
    rng = np.random.default_rng(seed)
    num_images = int(rng.integers(1, 12))
    crowded = seed % 10 == 7  # one category, >100 detections per image: maxDets truncation
    num_cats = 1 if crowded else int(rng.integers(1, 6))
    integer = seed % 3 == 0
    tied_scores = seed % 2 == 0
    images = [{"id": int(i), "width": 640, "height": 480}
              for i in rng.choice(np.arange(1, 1000), num_images, replace=False)]
    cat_ids = sorted(int(c) for c in rng.choice(np.arange(1, 100), num_cats + 1, replace=False))
    categories = [{"id": c, "name": f"c{c}"} for c in cat_ids]
    gt_cats = cat_ids[:-1] if seed % 4 else cat_ids  # often one category has no GT at all
    annotations, results = [], []
    for img in images:
        n_gt = int(rng.integers(0, 9))
        boxes = _random_boxes(rng, n_gt, integer)
        for box in boxes:
            area = box[2] * box[3]
            annotations.append({
                "id": len(annotations) + 1, "image_id": img["id"],
                "category_id": int(rng.choice(gt_cats)), "bbox": box,
                "area": area if rng.random() < 0.5 else area * float(rng.uniform(0.3, 1.0)),
                "iscrowd": int(rng.random() < 0.15)})
        if rng.random() < 0.15:
            continue  # an image without detections
        own = [a for a in annotations if a["image_id"] == img["id"]]
        n_det = int(rng.integers(0, 15)) + (150 if crowded else 0)
        for _ in range(n_det):
            if own and rng.random() < 0.6:
                src = own[int(rng.integers(len(own)))]
                box = _jitter(rng, src["bbox"], integer)
                cat = src["category_id"] if rng.random() < 0.85 else int(rng.choice(cat_ids))
            else:
                box = _random_boxes(rng, 1, integer)[0]
                cat = int(rng.choice(cat_ids))
            score = (float(rng.choice([0.2, 0.5, 0.9])) if tied_scores
                     else float(rng.random()))
            results.append({"image_id": img["id"], "category_id": cat, "bbox": box,
                            "score": score})
    return {"images": images, "categories": categories, "annotations": annotations}, results


def _random_boxes(rng: np.random.Generator, n: int, integer: bool) -> list[list[float]]:
    """``n`` xywh boxes with sides from 0 to ~300 px (log-uniform), some exactly on the area
    range bounds (32 and 96 px squares) and some of zero width or height."""
    side = np.exp(rng.uniform(np.log(2), np.log(300), size=(n, 2)))
    xy = rng.uniform(0, 300, size=(n, 2))
    special = rng.random(n)
    side[special < 0.05] = 32
    side[(special >= 0.05) & (special < 0.1)] = 96
    side[(special >= 0.1) & (special < 0.15), 0] = 0
    if integer:
        side, xy = np.round(side), np.round(xy)
    return np.concatenate([xy, side], axis=1).tolist()


def _jitter(rng: np.random.Generator, box: list[float], integer: bool) -> list[float]:
    """A copy of ``box`` moved and resized by up to ~20%, or exactly equal a quarter of the time."""
    if rng.random() < 0.25:
        return list(box)
    x, y, w, h = box
    out = np.array([x + w * rng.normal(0, 0.1), y + h * rng.normal(0, 0.1),
                    w * np.exp(rng.normal(0, 0.15)), h * np.exp(rng.normal(0, 0.15))])
    return (np.round(out) if integer else out).tolist()


def both_backends(gt: Any, results: Any, **kwargs: Any) -> tuple[CocoEvalResult, CocoEvalResult]:
    """Evaluate with the fast backend and with pycocotools; assert the 12 stats agree to 1e-12."""
    fast = evaluate_coco(gt, results, backend="fast", **kwargs)
    ref = evaluate_coco(gt, results, backend="pycocotools", **kwargs)
    assert tuple(fast.stats) == STAT_NAMES
    for name in STAT_NAMES:
        assert abs(fast.stats[name] - ref.stats[name]) <= STATS_ATOL, (name, fast.stats, ref.stats)
    return fast, ref


def detections_from_gt(gt: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Plausible detections for a real GT: 0-2 jittered copies of each object (a few with the
    wrong category) and ~2 random boxes per image, with random scores."""
    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in gt["categories"]]
    results = []
    for a in gt["annotations"]:
        for _ in range(int(rng.integers(0, 3))):
            cat = a["category_id"] if rng.random() < 0.9 else int(rng.choice(cat_ids))
            results.append({"image_id": a["image_id"], "category_id": cat,
                            "bbox": _jitter(rng, a["bbox"], False), "score": float(rng.random())})
    for img in gt["images"]:
        for box in _random_boxes(rng, int(rng.integers(0, 5)), False):
            results.append({"image_id": img["id"], "category_id": int(rng.choice(cat_ids)),
                            "bbox": box, "score": float(rng.random())})
    return results
