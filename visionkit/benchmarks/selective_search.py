"""Selective search speed and recall on a COCO set's images (default: ../shared/data raccoon val).

Each image is resized to ``--side`` on its long side (500 px: the paper's 500x375 VOC images)
and searched on one thread; reported: median and 90th-percentile seconds per image, proposals
per image and recall at IoU 0.5/0.7 of the first 2000 (boxes scaled with the image). Passed:
median ≤ 2 s and recall at IoU 0.5 of 2000 proposals ≥ 0.95.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

DEFAULT_SET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "raccoon" / "val.json"


def run(argv: list[str]) -> dict:
    """Time `SelectiveSearch` per image; return the JSON dict."""
    parser = argparse.ArgumentParser(prog="visionkit benchmark selective-search", description=__doc__)
    parser.add_argument("--json", default=str(DEFAULT_SET), help="COCO file (images beside it)")
    parser.add_argument("--image-root", default=None)
    parser.add_argument("--images", type=int, default=None, help="images timed (first N; default all)")
    parser.add_argument("--side", type=int, default=500, help="long side the images are resized to")
    parser.add_argument("--mode", default=None,
                        help="a SelectiveSearch mode: recall (the default), fast or quality")
    args = parser.parse_args(argv)

    import cv2
    import numpy as np
    import torch

    from visionkit.data.coco_detection import CocoDetection
    from visionkit.data.images import read_image
    from visionkit.detection import SelectiveSearch
    from visionkit.detection.selective_search import DEFAULT_MODE, MODES
    from visionkit.errors import DatasetError
    from visionkit.evaluation.proposal_recall import proposal_recall

    if not Path(args.json).is_file():
        raise DatasetError(f"{args.json}: no such COCO file (pass --json)")
    dataset = CocoDetection(args.json, args.image_root or Path(args.json).parent)
    mode = args.mode or DEFAULT_MODE
    if mode not in MODES:
        parser.error(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    search = SelectiveSearch(mode, max_side=None)
    torch.set_num_threads(1)
    seconds, boxes, truth, sizes = [], [], [], []
    for record in dataset.records[: args.images]:
        image = read_image(record.path)
        scale = args.side / max(image.shape[:2])
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        started = time.perf_counter()
        boxes.append(search(image))
        seconds.append(time.perf_counter() - started)
        truth.append(record.boxes * scale)
        sizes.append(list(image.shape[:2]))
    recall = proposal_recall(boxes, truth, counts=(100, 500, 1000, 2000))
    return {
        "benchmark": "selective-search",
        "set": args.json, "mode": mode, "images": len(seconds), "side": args.side,
        "threads": 1,
        "median_s": round(statistics.median(seconds), 3),
        "p90_s": round(float(np.percentile(seconds, 90)), 3),
        "mean_proposals": round(recall.mean_proposals, 1),
        "counts": recall.counts,
        "recall": recall.recall,
        "target_s": 2.0,
        "target_recall_0.5": 0.95,
        "passed": statistics.median(seconds) <= 2.0 and recall.recall["0.5"][-1] >= 0.95,
    }
