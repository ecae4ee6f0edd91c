"""Wall-clock time to a val mAP: our shipped detection config against torchvision's reference
recipe on the same detector (`visionkit benchmark time-to-map`).

Ours: `detect fit` with the config as shipped (default the small-objects EfficientNet-Lite0
FPN config that the README trains on BCCD). The reference: torchvision's `FasterRCNN` twin of
the same detector (same ImageNet backbone, same random FPN / RPN / head init, same sizes; see
`pretrained_detection.torchvision_twin`) trained the way torchvision's ``references/detection``
trains Faster R-CNN: SGD at 0.02 for 16 images a step, scaled linearly to the batch (0.02 / 16
per image, the reference's own rule), momentum 0.9, weight decay 1e-4 on every parameter, linear
warmup from 1/1000 over the first epoch's first min(1000, steps - 1) steps, the LR divided by 10
at 16/26 and 22/26 of the planned epochs, horizontal flips only, one input size (the config's
evaluation size), no EMA, no gradient clipping; and torchvision's hard NMS where our config asks
for Soft-NMS, which torchvision's `FasterRCNN` does not have, and its first box stage alone
where our config adds Cascade R-CNN stages (``box_cascade_iou``). Each gets the same wall budget
and plans its schedule over the epochs that fit it (``--epochs``, ``--reference-epochs``: a
heavier detector of ours fits fewer), and is scored after every epoch by the same COCO evaluator.

JSON: per run the mAP curve with its timestamps, the seconds at which each ``--targets`` mAP
was first reached (null: not within the budget), mAP at the budget, the largest change between
consecutive epochs over the second half of the run, and ours over the reference for each
target; a PNG of mAP against minutes (``--plot``).
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from typing import Any

import torch

from visionkit.benchmarks.pretrained_detection import (
    config_data,
    fit_ours,
    plain_detection_loop,
    plot_curves,
    read_run,
    twin_and_data,
)

DEFAULT_CONFIG = "configs/detect/fasterrcnn_efficientnet_lite0_fpn_small_objects.yaml"
REFERENCE_LR_PER_IMAGE = 0.02 / 16  # references/detection: 0.02 for 8 GPUs x 2 images
REFERENCE_MILESTONES = (16 / 26, 22 / 26)  # --epochs 26 --lr-steps 16 22
# the reference's augmentation, over the config's: horizontal flips only
REFERENCE_AUGMENTATION = {"hflip": 0.5, "vflip": 0.0, "transpose": 0.0, "color_jitter": 0.0,
                          "crop": "none"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="visionkit benchmark time-to-map", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="our `detect fit` config")
    parser.add_argument("--train-json", required=True)
    parser.add_argument("--val-json", required=True)
    parser.add_argument("--image-root", required=True)
    parser.add_argument("--minutes", type=float, default=20.0, help="wall budget per run")
    parser.add_argument("--epochs", type=int, default=None,
                        help="planned epochs of our schedule (default: the config's max_epochs)")
    parser.add_argument("--reference-epochs", type=int, default=None,
                        help="planned epochs of the reference's (default: --epochs); each as "
                             "many as fit its budget")
    parser.add_argument("--targets", default="0.45,0.5", help="mAP levels to time")
    parser.add_argument("--which", default="ours,reference")
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None, help="PNG of val mAP against minutes")
    return parser


def reference_config(config: dict) -> tuple[dict, dict]:
    """(config, data arguments) of the reference recipe: ``config``'s detector at one input size
    (its evaluation size), flips only, no EMA."""
    reference = copy.deepcopy(config)
    model = reference["model"]
    model.pop("ema_decay", None)
    options = model.setdefault("faster_rcnn", {})
    sizes = options.get("min_size", 800)
    options["min_size"] = sizes[-1] if isinstance(sizes, list) else sizes
    return reference, {**config.get("data", {}), **REFERENCE_AUGMENTATION}


def reference_factor(steps_per_epoch: int, epochs: int) -> Callable[[int], float]:
    """LR factor per step: the reference's warmup (first epoch) times its step decay."""
    warmup = min(1000, steps_per_epoch - 1)
    milestones = [round(epochs * m) for m in REFERENCE_MILESTONES]

    def factor(step: int) -> float:
        epoch = step // steps_per_epoch
        decay = 0.1 ** sum(epoch >= m for m in milestones)
        if epoch == 0 and step < warmup:  # torch's LinearLR from 1/1000 to 1
            return decay * (0.001 + (1 - 0.001) * step / warmup)
        return decay

    return factor


def train_reference(config: dict, args: argparse.Namespace, epochs: int) -> dict[str, Any]:
    """torchvision's twin of ``config``'s detector trained with the reference recipe."""
    reference, data = reference_config(config)
    data = config_data({"data": data}, args)
    dm, model = twin_and_data(reference, args, data)
    steps = len(dm.train_dataloader())
    lr = REFERENCE_LR_PER_IMAGE * dm.hparams.batch_size
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, reference_factor(steps, epochs))
    result = plain_detection_loop(model, dm, epochs, args.minutes, optimizer, schedule, None, None)
    return {**result, "lr": lr, "min_size": reference["model"]["faster_rcnn"]["min_size"]}


def first_reached(entry: dict[str, Any], target: float) -> float | None:
    """Seconds at the first epoch whose val mAP is at least ``target`` (None: never)."""
    return next((t for t, m in zip(entry["elapsed"], entry["val_map"]) if m >= target), None)


def late_swing(maps: list[float]) -> float:
    """The largest |change| of val mAP between consecutive epochs in the run's second half."""
    late = maps[len(maps) // 2:]
    return round(max((abs(b - a) for a, b in zip(late, late[1:])), default=0.0), 4)


def run(argv: list[str]) -> dict:
    """Train the chosen runs in turn; the JSON dict."""
    args = _parser().parse_args(argv)
    config, which, epochs = read_run(args, ("ours", "reference"))
    reference_epochs = args.reference_epochs or epochs
    targets = [float(t) for t in args.targets.split(",") if t]
    results: dict[str, Any] = {}
    if "ours" in which:
        results["ours"] = fit_ours(config, args, config_data(config, args), epochs)
    if "reference" in which:
        results["reference"] = train_reference(config, args, reference_epochs)
    for entry in results.values():
        entry["seconds_to"] = {str(t): first_reached(entry, t) for t in targets}
        entry["late_swing"] = late_swing(entry["val_map"])
    summary: dict[str, Any] = {}
    if len(results) == 2:
        ours, ref = results["ours"], results["reference"]
        for t in targets:
            a, b = ours["seconds_to"][str(t)], ref["seconds_to"][str(t)]
            # the reference not reaching a target within the budget: ours over the whole budget
            bound = b if b is not None else 60 * args.minutes
            summary[f"time_ratio_{t}"] = None if a is None else round(a / bound, 3)
            summary[f"reference_reached_{t}"] = b is not None
        summary["final_map_difference"] = round(ours["val_map"][-1] - ref["val_map"][-1], 4)
        summary["best_map_difference"] = round(max(ours["val_map"]) - max(ref["val_map"]), 4)
    if args.plot:
        plot_curves(results, args.plot)
    return {"benchmark": "time-to-map", "config": args.config, "model": config["model"]["name"],
            "train_json": args.train_json, "val_json": args.val_json, "epochs": epochs,
            "reference_epochs": reference_epochs, "minutes": args.minutes, "seed": args.seed,
            "targets": targets, "results": results, **summary}
