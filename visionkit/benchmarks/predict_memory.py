"""`predict-memory` benchmark: peak RSS of `visionkit detect predict` over N vs M images.

A synthetic shapes folder of ``max(--sizes)`` images and a small untrained detector checkpoint
are written once; each size then runs `detect_to_dir` (annotated images, JSON-lines log,
COCO JSON, CSV, all outputs on) in a fresh Python process, sizes alternating over
``--repeats`` rounds. Peak RSS is ``ru_maxrss`` of that process; with the default of no
data-loader workers every image is decoded, detected and written there. (A child's
``ru_maxrss`` counts pages shared with its parent, so workers' figures are not added.)
Streaming holds when the ratio of the largest to the smallest size is ~1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from visionkit.detection.options import FasterRCNNOptions, options_dict

CHILD = """
import json, resource, sys
from visionkit.inference.detection import detect_to_dir
weights, out, workers, *paths = sys.argv[1:]
summary = detect_to_dir(weights, paths, out, num_workers=int(workers), progress=False)
print(json.dumps({"images": summary.images,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

SMALL_DETECTOR = FasterRCNNOptions(min_size=128, max_size=128, fpn_channels=64, representation_size=128,
                                   rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100)


def write_inputs(work: Path, count: int, size: int, seed: int) -> tuple[Path, list[Path]]:
    """A small untrained detection checkpoint and ``count`` synthetic images."""
    from visionkit.data.synthetic_detection import make_shapes_detection
    from visionkit.tasks.checkpoint_io import save_task_checkpoint
    from visionkit.tasks.detection import DetectionTask

    root = make_shapes_detection(work / "data", n_train=0, n_val=count, size=size, seed=seed)
    task = DetectionTask("fasterrcnn_resnet18_fpn", 4, faster_rcnn=SMALL_DETECTOR)
    ckpt = save_task_checkpoint(task, work / "detector.ckpt")
    return ckpt, sorted((root / "images" / "val").glob("*.png"))


def measure(ckpt: Path, images: list[Path], out: Path, workers: int) -> dict:
    """Run one prediction in a fresh process; its image count and peak RSS (MB)."""
    result = subprocess.run([sys.executable, "-c", CHILD, str(ckpt), str(out), str(workers),
                             *map(str, images)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"predict run failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(argv: list[str]) -> dict:
    """Parse options, write the inputs, measure each size alternately; the JSON-ready result."""
    parser = argparse.ArgumentParser(prog="visionkit benchmark predict-memory", description=__doc__)
    parser.add_argument("--sizes", default="200,1000", help="comma-separated image counts")
    parser.add_argument("--image-size", type=int, default=160, help="synthetic image side (px)")
    parser.add_argument("--workers", type=int, default=0, help="data-loader workers")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the sizes (median kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt, images = write_inputs(work, max(sizes), args.image_size, args.seed)
        runs: dict[int, list[dict]] = {n: [] for n in sizes}
        for r in range(args.repeats):
            for n in sizes:
                runs[n].append(measure(ckpt, images[:n], work / f"out_{n}_{r}", args.workers))
    peak = {n: statistics.median(x["peak_mb"] for x in rs) for n, rs in runs.items()}
    small, large = min(sizes), max(sizes)
    return {
        "benchmark": "predict-memory",
        "images": {str(n): rs[0]["images"] for n, rs in runs.items()},
        "peak_rss_mb": {str(n): round(v, 1) for n, v in peak.items()},
        f"ratio_{large}_vs_{small}": round(peak[large] / peak[small], 3),
        "target": "ratio within 1 ± 0.10",
        "options": {"image_size": args.image_size, "workers": args.workers, "repeats": args.repeats,
                    "detector": {"name": "fasterrcnn_resnet18_fpn", **options_dict(SMALL_DETECTOR)}},
    }
