"""Faster R-CNN learning check: train from scratch on synthetic shapes (CPU), report val COCO mAP.

A deterministic shapes set (`visionkit.data.synthetic_detection`, COCO JSON on disk) is split
into train and a held-out val set; a small Faster R-CNN (ResNet-18 FPN, reduced heads, images
resized to ``--model-size``) is trained with `DetectionTask` from random init and evaluated on
val by `visionkit.evaluation` each epoch. Passes when the final mAP@0.5 reaches ``--target``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from visionkit.data.synthetic import SHAPES
from visionkit.detection.options import section

# A small Faster R-CNN for 256 px scenes with 36–92 px objects, resized to --model-size:
# strides 4–16 (+32 for the RPN), anchors 1/8–1/2 of the input side, narrow FPN and box head.
SMALL_OPTIONS: dict[str, Any] = {
    "returned_layers": [1, 2, 3],
    "fpn_channels": 128,
    "representation_size": 256,
    "rpn_pre_nms_top_n_train": 600,
    "rpn_post_nms_top_n_train": 300,
    "rpn_pre_nms_top_n_test": 300,
    "rpn_post_nms_top_n_test": 100,
    "box_batch_size_per_image": 64,
}


def small_options(model_size: int) -> dict[str, Any]:
    """`SMALL_OPTIONS` with the transform size and anchors scaled to ``model_size``."""
    anchors = [[model_size // 8], [model_size // 4], [model_size // 2], [model_size]]
    return {**SMALL_OPTIONS, "min_size": model_size, "max_size": model_size, "anchor_sizes": anchors}


def add_shapes_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the synthetic shapes set every detection benchmark trains on."""
    parser.add_argument("--size", type=int, default=256, help="synthetic image side (px)")
    parser.add_argument("--n-train", type=int, default=240)
    parser.add_argument("--n-val", type=int, default=60)
    parser.add_argument("--classes", type=int, default=3, help="shape classes (first N of SHAPES)")
    parser.add_argument("--max-objects", type=int, default=6, help="shapes per image, at most")
    parser.add_argument("--seed", type=int, default=0)


def add_training_arguments(parser: argparse.ArgumentParser, *, epochs: int, val_every: int,
                           batch_size: int, lr: float, epochs_help: str = "training epochs") -> None:
    """The options `train` reads, with a benchmark's defaults, and --threads."""
    parser.add_argument("--epochs", type=int, default=epochs, help=epochs_help)
    parser.add_argument("--val-every", type=int, default=val_every, help="validate every N epochs")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="images per batch")
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="adamw")
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default; 1 is fastest on a busy machine)")


def write_shapes(folder: Path, args: argparse.Namespace) -> Path:
    """The shapes set of `add_shapes_arguments`' options, written under ``folder``; its root."""
    from visionkit.data.synthetic_detection import make_shapes_detection

    return make_shapes_detection(folder, SHAPES[: args.classes], args.n_train, args.n_val, args.size,
                                 args.max_objects, seed=args.seed)


def shapes_summary(args: argparse.Namespace) -> dict[str, Any]:
    """The set's options for the JSON report."""
    return {"classes": list(SHAPES[: args.classes]), "size": args.size, "n_train": args.n_train,
            "n_val": args.n_val, "max_objects": args.max_objects, "seed": args.seed}


def train(root: Path, out: Path, args: argparse.Namespace, name: str, options: dict[str, Any]
          ) -> tuple[Any, list[dict[str, float]]]:
    """Fit DetectionTask ``name`` with ``options`` (fields of its family's options) on ``root``;
    return the trainer and val metrics.

    ``args`` gives seed, batch_size, num_workers, optimizer, lr, epochs and val_every.
    """
    from visionkit.tasks.callbacks import MetricHistory, rounded
    from visionkit.tasks.detection import DetectionTask
    from visionkit.tasks.detection_datamodule import DetectionDataModule
    from visionkit.tasks.fitting import seed_all
    from visionkit.tasks.trainer import build_trainer

    seed_all(args.seed)
    dm = DetectionDataModule(str(root / "train.json"), str(root / "val.json"), str(root),
                             batch_size=args.batch_size, num_workers=args.num_workers,
                             color_jitter=0.1, proposal_cache=str(root / "proposals"))
    task = DetectionTask(name, dm.num_classes, **{section(name): options},
                         optimizer=args.optimizer, lr=args.lr, weight_decay=1e-4, scheduler="cosine",
                         warmup_epochs=min(1.0, args.epochs / 4), class_names=dm.classes,
                         category_ids=dm.category_ids)
    record = MetricHistory(echo=True)
    trainer = build_trainer(str(out), accelerator="cpu", max_epochs=args.epochs, enable_progress_bar=False,
                            enable_model_summary=False, logger=False, gradient_clip_val=10.0,
                            num_sanity_val_steps=0, check_val_every_n_epoch=args.val_every,
                            callbacks=[record])
    trainer.fit(task, dm)
    history = [rounded(row) for row in record.rows]
    return trainer, history


def run(argv: list[str]) -> dict:
    """Parse options, write the synthetic set, train, return the JSON-ready result."""
    parser = argparse.ArgumentParser(prog="visionkit benchmark faster-rcnn", description=__doc__)
    parser.add_argument("--model", default="fasterrcnn_resnet18_fpn")
    add_shapes_arguments(parser)
    parser.add_argument("--model-size", type=int, default=128, help="side the model resizes to")
    add_training_arguments(parser, epochs=12, val_every=2, batch_size=4, lr=0.002)
    parser.add_argument("--target", type=float, default=0.8, help="mAP@0.5 needed to pass")
    parser.add_argument("--keep", default=None, help="keep the data and run under this folder")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="vk_frcnn_") as tmp:
        work = Path(args.keep or tmp)
        started, cpu_started = time.perf_counter(), time.process_time()
        root = write_shapes(work / "data", args)
        trainer, history = train(root, work / "run", args, args.model, small_options(args.model_size))
        final = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
        val = json.loads((root / "val.json").read_text())
        return {
            "benchmark": "faster-rcnn",
            "model": args.model,
            "options": small_options(args.model_size),
            "data": {**shapes_summary(args), "val_objects": len(val["annotations"])},
            "train": {"epochs": args.epochs, "batch_size": args.batch_size,
                      "optimizer": args.optimizer, "lr": args.lr,
                      "from_scratch": True, "device": "cpu", "threads": torch.get_num_threads()},
            "history": history,
            "val_map": round(final.get("val_map", float("nan")), 4),
            "val_map50": round(final.get("val_map50", float("nan")), 4),
            "val_map75": round(final.get("val_map75", float("nan")), 4),
            "target_map50": args.target,
            "passed": final.get("val_map50", 0.0) >= args.target,
            "total_seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(time.process_time() - cpu_started, 1),
        }
