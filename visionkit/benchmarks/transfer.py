"""Transfer learning, side by side: every strategy on the same data, epochs and seed.

Two cases (``--case``):

- ``real``: ImageNet EfficientNet-Lite0 (weights from the installed package, no network) →
  an image folder of real photos (default: hymenoptera, ants vs bees). Strategies
  ``linear_probe`` (backbone frozen), ``finetune`` (all layers, low LR), ``gradual`` (head
  first, one more layer group each epoch), ``discriminative`` (all layers, each group below
  the head at ``group_lr_decay`` x the LR of the one above) and ``from_scratch`` (random init,
  the same recipe at a from-scratch LR). The plain PyTorch loop of
  `visionkit.benchmarks.plain_loop` runs the fine-tune and the linear probe too (``--no-plain``
  skips it), as the reference our recipes must match.
- ``synthetic``: a pretext task, offline and small: a backbone pretrained on four synthetic
  shapes (task A) is saved in torchvision's layout, loaded back through
  ``create_classifier(..., pretrained=<path>)`` and transferred to the four other shapes (task B).

JSON: per strategy the val accuracy after each epoch, its best and final, and wall seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from visionkit.benchmarks.plain_loop import plain_loop
from visionkit.data.synthetic import SHAPES, make_shapes_classification
from visionkit.fileio import atomic_write_with
from visionkit.tasks.fitting import fit_classifier

TASK_A = SHAPES[:4]
TASK_B = SHAPES[4:]
DEFAULT_ROOT = "../shared/data/hymenoptera"

# The real case's recipes: AdamW, one-cycle, label smoothing 0.1, dropout 0.2 before the head.
REAL_COMMON = {"optimizer": "adamw", "weight_decay": 0.01, "scheduler": "onecycle",
               "warmup_epochs": 0.5, "label_smoothing": 0.1, "dropout": 0.2}
REAL_STRATEGIES: dict[str, dict[str, Any]] = {
    "linear_probe": {"pretrained": "imagenet", "strategy": "linear_probe", "lr": 1e-3},
    "finetune": {"pretrained": "imagenet", "strategy": "finetune", "lr": 5e-4},
    "gradual": {"pretrained": "imagenet", "strategy": "gradual", "unfreeze_every": 1, "lr": 5e-4},
    "discriminative": {"pretrained": "imagenet", "strategy": "finetune", "lr": 1e-3,
                       "group_lr_decay": 0.6},
    "from_scratch": {"pretrained": None, "strategy": "finetune", "lr": 2e-3},
}
PLAIN = {"plain_finetune": "finetune", "plain_linear_probe": "linear_probe"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="visionkit benchmark transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=("real", "synthetic", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    real = parser.add_argument_group("real photos")
    real.add_argument("--root", default=DEFAULT_ROOT, help="image folder (train/ and val/)")
    real.add_argument("--backbone", default="efficientnet_lite0")
    real.add_argument("--epochs", type=int, default=6)
    real.add_argument("--image-size", type=int, default=224)
    real.add_argument("--batch-size", type=int, default=32)
    real.add_argument("--num-workers", type=int, default=2)
    real.add_argument("--strategies", default=",".join(REAL_STRATEGIES),
                      help=f"comma-separated, from {', '.join(REAL_STRATEGIES)}")
    real.add_argument("--plain", action=argparse.BooleanOptionalAction, default=True,
                      help="also run the plain PyTorch loop (fine-tune and linear probe)")
    synthetic = parser.add_argument_group("synthetic shapes")
    synthetic.add_argument("--synthetic-backbone", default="resnet18")
    synthetic.add_argument("--size", type=int, default=48, help="image side (px)")
    synthetic.add_argument("--n-train-a", type=int, default=600, help="task-A images per class")
    synthetic.add_argument("--n-train-b", type=int, default=30, help="task-B images per class")
    synthetic.add_argument("--n-val", type=int, default=40, help="val images per class")
    synthetic.add_argument("--epochs-a", type=int, default=6)
    synthetic.add_argument("--epochs-b", type=int, default=8)
    synthetic.add_argument("--weights", default="weights/transfer_shapes_{backbone}.pth",
                           help="where the task-A backbone is saved")
    return parser


def run_real(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every strategy (and the plain loops) on the image folder ``args.root``."""
    names = [s for s in args.strategies.split(",") if s]
    unknown = sorted(set(names) - set(REAL_STRATEGIES))
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; known: {', '.join(REAL_STRATEGIES)}")
    data = {"image_size": args.image_size, "batch_size": args.batch_size,
            "num_workers": args.num_workers, "crop_scale": (0.25, 1.0)}
    results: dict[str, Any] = {}
    for name in names:
        model = {"backbone": args.backbone, **REAL_COMMON, **REAL_STRATEGIES[name]}
        record, _ = fit_classifier(args.root, work / f"real_{name}", epochs=args.epochs,
                                   seed=args.seed, data=data, model=model)
        results[name] = {**record.to_dict(), **{k: v for k, v in REAL_STRATEGIES[name].items()
                                                 if k != "strategy"}}
    if args.plain:
        for name, strategy in PLAIN.items():
            recipe = REAL_STRATEGIES[strategy]
            results[name] = plain_loop(
                args.root, backbone=args.backbone, pretrained="imagenet",
                linear_probe=strategy == "linear_probe", epochs=args.epochs, lr=recipe["lr"],
                weight_decay=REAL_COMMON["weight_decay"], dropout=REAL_COMMON["dropout"],
                label_smoothing=REAL_COMMON["label_smoothing"], seed=args.seed, data=data)
    return {"root": args.root, "backbone": args.backbone, "pretrained": "imagenet",
            "image_size": args.image_size, "epochs": args.epochs, "recipe": REAL_COMMON,
            "results": results}


def run_synthetic(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Pretrain on task A, save the backbone, transfer it to task B three ways."""
    size, backbone = args.size, args.synthetic_backbone
    data_a = make_shapes_classification(work / "a", TASK_A, args.n_train_a, args.n_val, size,
                                        seed=args.seed)
    data_b = make_shapes_classification(work / "b", TASK_B, args.n_train_b, args.n_val, size,
                                        seed=args.seed + 1)
    data = {"image_size": size, "batch_size": 16, "num_workers": 0, "crop_scale": (0.5, 1.0),
            "color_jitter": 0.2}
    common = {"backbone": backbone, "optimizer": "adamw", "weight_decay": 0.01}
    record_a, task_a = fit_classifier(data_a, work / "runs_a", epochs=args.epochs_a,
                                      seed=args.seed, data=data, model={**common, "lr": 2e-3})
    weights = Path(args.weights.format(backbone=backbone))
    # The backbone only: a task-A head of the same shape would load as task B's head and map
    # task-A classes onto task-B labels (that made fine-tuning score below chance).
    final = task_a.model.backbone.spec.final_layer + "."
    state = {k: v for k, v in task_a.model.torchvision_state_dict().items()
             if not k.startswith(final)}
    atomic_write_with(weights, lambda dest: torch.save(state, dest))

    results = {}
    for name, kwargs in {
        "linear_probe": {"pretrained": str(weights), "strategy": "linear_probe", "lr": 1e-2},
        "finetune": {"pretrained": str(weights), "strategy": "finetune", "lr": 5e-4},
        "from_scratch": {"pretrained": None, "strategy": "finetune", "lr": 2e-3},
    }.items():
        record, _ = fit_classifier(data_b, work / f"runs_b_{name}", epochs=args.epochs_b,
                                   seed=args.seed, data=data, model={**common, **kwargs})
        results[name] = {**record.to_dict(), **{k: v for k, v in kwargs.items() if k != "pretrained"}}
    return {
        "backbone": backbone, "image_size": size,
        "task_a": {"classes": list(TASK_A), "train_per_class": args.n_train_a,
                   "epochs": args.epochs_a, **record_a.to_dict(), "weights": str(weights)},
        "task_b": {"classes": list(TASK_B), "train_per_class": args.n_train_b,
                   "val_per_class": args.n_val, "epochs": args.epochs_b,
                   "chance": round(1 / len(TASK_B), 4), "results": results},
    }


def run(argv: list[str]) -> dict:
    """Parse options, run the chosen cases, return the results."""
    args = _parser().parse_args(argv)
    out: dict[str, Any] = {"benchmark": "transfer", "seed": args.seed}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vk_transfer_") as tmp:
        if args.case in ("real", "both"):
            out["real"] = run_real(args, Path(tmp))
        if args.case in ("synthetic", "both"):
            out["synthetic"] = run_synthetic(args, Path(tmp))
    out["total_seconds"] = round(time.perf_counter() - started, 1)
    return out
