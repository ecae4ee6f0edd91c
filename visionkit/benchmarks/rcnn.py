"""R-CNN vs Fast R-CNN on synthetic shapes (CPU, from scratch): val mAP and per-image inference time.

The same deterministic shapes set as `visionkit benchmark faster-rcnn` (train + held-out val),
selective-search proposals computed once into the set's proposal cache, then Fast R-CNN and
R-CNN with the same backbone trained with `DetectionTask` from random init and scored on val
by `visionkit.evaluation`. Inference is timed on val images with the same cached proposals,
the two models alternating image by image, both prepared as `detect predict` runs them
(`optimize_for_inference`); proposal time is shared and reported apart.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from visionkit.benchmarks.detection import (
    add_shapes_arguments,
    add_training_arguments,
    shapes_summary,
    train,
    write_shapes,
)

PROPOSALS = {"mode": "fast", "max_proposals": 2000, "max_side": None}


def fast_options(model_size: int) -> dict[str, Any]:
    """Fast R-CNN for 256 px scenes: images resized to ``model_size``, RoIAlign, narrow head."""
    return {"min_size": model_size, "max_size": model_size, "roi_pool": "align",
            "representation_size": 256, "proposals": PROPOSALS}


def rcnn_options(warp_size: int) -> dict[str, Any]:
    """R-CNN warping regions to ``warp_size`` squares with the paper's context ratio (16/224)."""
    return {"warp_size": warp_size, "max_proposals_test": 2000, "proposals": PROPOSALS}


def time_inference(models: dict[str, Any], dataset: Any, images: int) -> dict[str, dict[str, float]]:
    """Median seconds per image of each model (alternating), on the first ``images`` items."""
    import torch

    from visionkit.detection.inference_rewrites import optimize_for_inference

    seconds: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        optimize_for_inference(model)  # as `detect predict` runs them
    with torch.inference_mode():
        for index in range(min(images, len(dataset))):
            image, target = dataset[index]
            for name, model in models.items():
                started = time.perf_counter()
                model([image], proposals=[target["proposals"]])
                seconds[name].append(time.perf_counter() - started)
    return {name: {"median_s": round(statistics.median(s), 4), "images": len(s)}
            for name, s in seconds.items()}


def run(argv: list[str]) -> dict:
    """Parse options, write the synthetic set, train both detectors, time them, return the JSON."""
    parser = argparse.ArgumentParser(prog="visionkit benchmark rcnn", description=__doc__)
    parser.add_argument("--backbone", default="resnet18", help="same for both detectors")
    add_shapes_arguments(parser)
    parser.add_argument("--model-size", type=int, default=384, help="side Fast R-CNN resizes to")
    parser.add_argument("--warp-size", type=int, default=64, help="R-CNN region input side")
    add_training_arguments(parser, epochs=16, val_every=4, batch_size=2, lr=0.001,  # the paper's 2 images
                           epochs_help="Fast R-CNN epochs")
    parser.add_argument("--rcnn-epochs", type=int, default=8)
    parser.add_argument("--time-images", type=int, default=20, help="val images timed per model")
    parser.add_argument("--target", type=float, default=0.6, help="mAP@0.5 each needs to pass")
    parser.add_argument("--speedup", type=float, default=5.0, help="Fast R-CNN speed-up needed")
    parser.add_argument("--keep", default=None, help="keep the data and runs under this folder")
    args = parser.parse_args(argv)

    import torch

    from visionkit.data.coco_detection import CocoDetection
    from visionkit.data.proposal_cache import ProposalCache, precompute_proposals
    from visionkit.detection import SelectiveSearch
    from visionkit.evaluation.proposal_recall import proposal_recall

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="vk_rcnn_") as tmp:
        work = Path(args.keep or tmp)
        root = write_shapes(work / "data", args)
        cache = ProposalCache(root / "proposals", SelectiveSearch(**PROPOSALS))
        val = CocoDetection(root / "val.json", root, proposals=cache)
        started = time.perf_counter()
        computed = sum(precompute_proposals(dataset, cache, progress=False)["computed"]
                       for dataset in (CocoDetection(root / "train.json", root), val))
        proposal_seconds = (time.perf_counter() - started) / max(1, computed)
        recall = proposal_recall([cache(r) for r in val.records], [r.boxes for r in val.records])

        results: dict[str, Any] = {}
        models = {}
        for kind, name, options, epochs in (
                ("fast_rcnn", f"fast_rcnn_{args.backbone}", fast_options(args.model_size), args.epochs),
                ("rcnn", f"rcnn_{args.backbone}", rcnn_options(args.warp_size), args.rcnn_epochs)):
            started = time.perf_counter()
            run_args = argparse.Namespace(**{**vars(args), "epochs": epochs})
            trainer, history = train(root, work / kind, run_args, name, options)
            final = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
            models[kind] = trainer.lightning_module.model
            results[kind] = {"model": name, "options": options, "epochs": epochs, "history": history,
                             "val_map": round(final.get("val_map", float("nan")), 4),
                             "val_map50": round(final.get("val_map50", float("nan")), 4),
                             "train_seconds": round(time.perf_counter() - started, 1)}
        timing = time_inference(models, val, args.time_images)
        speedup = timing["rcnn"]["median_s"] / timing["fast_rcnn"]["median_s"]
        passed = all(results[k]["val_map50"] >= args.target for k in results) and speedup >= args.speedup
        return {
            "benchmark": "rcnn",
            "data": shapes_summary(args),
            "train": {"batch_size": args.batch_size, "optimizer": args.optimizer, "lr": args.lr,
                      "from_scratch": True, "device": "cpu", "threads": torch.get_num_threads()},
            "proposals": {**PROPOSALS, "computed_images": computed,
                          "seconds_per_image": round(proposal_seconds, 4),
                          "val_recall": recall.to_dict()},
            **results,
            "inference": {**timing, "fast_rcnn_speedup": round(speedup, 2),
                          "note": "per image, cached proposals; proposals cost seconds_per_image more"},
            "target_map50": args.target,
            "target_speedup": args.speedup,
            "passed": passed,
        }

