"""`visionkit evaluate --gt GT.json --pred RESULTS.json [--out DIR]`: COCO mAP report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visionkit.evaluation.coco import BACKENDS, IOU_TYPES
from visionkit.evaluation.report import evaluate_to_dir


def main(argv: list[str]) -> int:
    """Print the 12-line COCO summary and per-class AP; write metrics.json and PNG plots."""
    parser = argparse.ArgumentParser(
        prog="visionkit evaluate",
        description="COCO mAP of a results JSON against a ground-truth JSON: prints the "
                    "standard summary and per-class AP, writes metrics.json, PR curves "
                    "(IoU 0.5, 0.75, mean) and a per-class AP chart.")
    parser.add_argument("--gt", required=True, help="COCO instances JSON (ground truth)")
    parser.add_argument("--pred", required=True, help="COCO results JSON (detections)")
    parser.add_argument("--out", help="output folder (default: runs/evaluate/<pred file stem>/)")
    parser.add_argument("--iou-type", choices=IOU_TYPES, default="bbox",
                        help="bbox, or segm (segm always runs through pycocotools)")
    parser.add_argument("--backend", choices=BACKENDS, default="fast",
                        help="fast: our exact vectorised implementation; pycocotools: reference")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path("runs", "evaluate", Path(args.pred).stem)
    result, paths = evaluate_to_dir(args.gt, args.pred, out, iou_type=args.iou_type,
                                    backend=args.backend)
    print(result.summary())
    print()
    print(result.per_class_table())
    print()
    print(f"wrote {', '.join(p.name for p in paths)} to {out}/")
    if result.num_detections == 0:
        print(f"note: {args.pred} holds no detections, so every AP and AR is 0", file=sys.stderr)
    return 0
