"""Transfer learning, offline: pretrain on task A, reuse the backbone for task B three ways.

Task A and task B are disjoint synthetic shape sets (different classes). The task-A backbone
is saved to `weights/` in torchvision's layout and loaded back through
`create_classifier(..., pretrained=<path>)`; task B is then trained by linear probe, by full
fine-tuning, and from scratch, with the same data, epochs and seed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from visionkit.data.synthetic import SHAPES, make_shapes_classification
from visionkit.fileio import atomic_write_with

TASK_A = SHAPES[:4]
TASK_B = SHAPES[4:]


def train(root: Path, out: Path, epochs: int, size: int, backbone: str, seed: int,
          **task_args) -> tuple[float, object]:
    """Fit a ClassificationTask on `root`; return (best val accuracy, task)."""
    import lightning as L

    from visionkit.tasks.classification import ClassificationTask
    from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule
    from visionkit.tasks.trainer import build_trainer

    L.seed_everything(seed, verbose=False)
    dm = ImageFolderDataModule(str(root), image_size=size, batch_size=16, num_workers=0,
                               crop_scale=(0.5, 1.0), color_jitter=0.2)
    task = ClassificationTask(backbone, dm.num_classes, class_names=dm.classes, image_size=size,
                              optimizer="adamw", weight_decay=0.01, **task_args)
    trainer = build_trainer(str(out), max_epochs=epochs, enable_progress_bar=False,
                            enable_model_summary=False, deterministic=True, logger=False)
    trainer.fit(task, dm)
    best = trainer.checkpoint_callbacks[0].best_model_score
    return float(best), task


def run(argv: list[str]) -> dict:
    """Parse options, run pretraining and the three task-B strategies, return the results."""
    parser = argparse.ArgumentParser(prog="visionkit benchmark transfer", description=__doc__)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, default=48, help="image side (px)")
    parser.add_argument("--n-train-a", type=int, default=150, help="task-A images per class")
    parser.add_argument("--n-train-b", type=int, default=12, help="task-B images per class")
    parser.add_argument("--n-val", type=int, default=40, help="val images per class")
    parser.add_argument("--epochs-a", type=int, default=8)
    parser.add_argument("--epochs-b", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default="weights/transfer_shapes_{backbone}.pth",
                        help="where the task-A backbone is saved")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="vk_transfer_") as tmp:
        work = Path(tmp)
        data_a = make_shapes_classification(work / "a", TASK_A, args.n_train_a, args.n_val,
                                            args.size, seed=args.seed)
        data_b = make_shapes_classification(work / "b", TASK_B, args.n_train_b, args.n_val,
                                            args.size, seed=args.seed + 1)
        started = time.perf_counter()
        acc_a, task_a = train(data_a, work / "runs_a", args.epochs_a, args.size, args.backbone,
                              args.seed, lr=2e-3)
        weights = Path(args.weights.format(backbone=args.backbone))
        state = task_a.model.torchvision_state_dict()
        atomic_write_with(weights, lambda dest: torch.save(state, dest))

        results = {}
        for name, kwargs in {
            "linear_probe": {"pretrained": str(weights), "strategy": "linear_probe", "lr": 1e-2},
            "finetune": {"pretrained": str(weights), "strategy": "finetune", "lr": 5e-4},
            "from_scratch": {"pretrained": None, "strategy": "finetune", "lr": 2e-3},
        }.items():
            t0 = time.perf_counter()
            acc, _ = train(data_b, work / f"runs_b_{name}", args.epochs_b, args.size, args.backbone,
                           args.seed, **kwargs)
            results[name] = {"val_acc": round(acc, 4), "seconds": round(time.perf_counter() - t0, 1),
                             **{k: v for k, v in kwargs.items() if k != "pretrained"}}
    return {
        "benchmark": "transfer",
        "backbone": args.backbone,
        "image_size": args.size,
        "task_a": {"classes": list(TASK_A), "train_per_class": args.n_train_a,
                   "epochs": args.epochs_a, "val_acc": round(acc_a, 4), "weights": str(weights)},
        "task_b": {"classes": list(TASK_B), "train_per_class": args.n_train_b,
                   "val_per_class": args.n_val, "epochs": args.epochs_b, "results": results},
        "total_seconds": round(time.perf_counter() - started, 1),
    }
