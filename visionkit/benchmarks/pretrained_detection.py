"""Detection on a pretrained backbone, side by side: our `detect fit` vs torchvision's FasterRCNN.

Both detectors start from the same weights: the ImageNet backbone of the config (default
`fasterrcnn_efficientnet_lite0_fpn`: EfficientNet-Lite0, frozen BatchNorm, the first stages
frozen) and the same random FPN / RPN / box-head init (ours is built, then its state dict is
loaded into torchvision's `FasterRCNN`, built with torchvision's FPN, anchor generator, RoIAlign
pooler and heads of the same sizes). They get the same data pipeline (`DetectionDataModule`:
augmentation, batches), optimizer (AdamW, no decay on biases and norms, the backbone body at
``backbone_lr_scale`` times the LR), warmup + cosine schedule over the same epochs, gradient
clipping, weight EMA when the config keeps one, and wall-clock budget (``--minutes``). Ours
trains through `DetectionTask` (Lightning), torchvision's in a plain PyTorch loop. Both are
scored after every epoch by the same COCO evaluator (pycocotools' numbers).

JSON: per detector the val mAP and mAP@0.5 after each epoch with the seconds elapsed, best and
final, plus a PNG of mAP against time (``--plot``).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from visionkit.data.epoch_seeding import seed_for_epoch
from visionkit.detection import classification_layers
from visionkit.detection.weights import CASCADE
from visionkit.errors import ConfigError
from visionkit.evaluation import DetectionEvaluator
from visionkit.models.ema import WeightEMA
from visionkit.models.transfer import scaled_parameter_groups
from visionkit.tasks.fitting import fit_detector, seed_all
from visionkit.tasks.optim import build_optimizer, warmup_cosine

DEFAULT_CONFIG = "configs/detect/fasterrcnn_efficientnet_lite0_fpn.yaml"
BUILDER_ONLY = ("trainable_backbone_layers", "returned_layers", "fpn_channels", "anchor_sizes",
                "aspect_ratios", "representation_size", "roi_pool", "frozen_bn")
# our options that torchvision's FasterRCNN lacks: its twin of a Soft-NMS detector uses hard NMS,
# of a cascade the first stage alone (the later stages' weights are left out)
NOT_IN_TORCHVISION = ("box_soft_nms", "box_soft_nms_sigma", "box_cascade_iou")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="visionkit benchmark pretrained-detection",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="a `detect fit` config")
    parser.add_argument("--train-json", required=True)
    parser.add_argument("--val-json", required=True)
    parser.add_argument("--image-root", required=True)
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's max_epochs")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall budget per detector")
    parser.add_argument("--which", default="ours,torchvision")
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None, help="PNG of val mAP against minutes")
    return parser


def torchvision_twin(ours: nn.Module) -> nn.Module:
    """torchvision's `FasterRCNN` with our detector's backbone body, sizes, options (all but
    `NOT_IN_TORCHVISION`) and weights."""
    from torchvision.models.detection import FasterRCNN as TorchvisionFasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign
    from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

    class Backbone(nn.Module):
        def __init__(self, body: nn.Module, in_channels: list[int], out_channels: int) -> None:
            super().__init__()
            self.body = body
            self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=LastLevelMaxPool())
            self.out_channels = out_channels

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return self.fpn(self.body(x))

    config = ours.config
    in_channels = [block[0].in_channels for block in ours.backbone.fpn.inner_blocks]
    out_channels = ours.backbone.out_channels
    backbone = Backbone(copy.deepcopy(ours.backbone.body), in_channels, out_channels)
    generator = ours.rpn.anchor_generator
    representation = ours.roi_heads.box_predictor.cls_score.in_features
    options = {k: v for k, v in config.items()
               if k not in ("name", "num_classes", *BUILDER_ONLY, *NOT_IN_TORCHVISION)}
    model = TorchvisionFasterRCNN(
        backbone, None,
        rpn_anchor_generator=AnchorGenerator(generator.sizes, generator.aspect_ratios),
        box_roi_pool=MultiScaleRoIAlign(ours.backbone.featmap_names, 7, 2),
        box_head=TwoMLPHead(out_channels * 7 * 7, representation),
        box_predictor=FastRCNNPredictor(representation, config["num_classes"]), **options)
    model.load_state_dict({k: v for k, v in ours.state_dict().items()
                           if not k.startswith(CASCADE)}, strict=True)
    return model


def config_optimizer(model: nn.Module, hp: dict) -> torch.optim.Optimizer:
    """The optimizer a detection config's ``model`` section asks for, over ``model``'s parameter
    groups (no decay on biases and norms; torchvision's backbone body at ``backbone_lr_scale``
    times the LR), for a plain loop beside `DetectionTask`."""
    groups = scaled_parameter_groups(model, classification_layers(model), hp["lr"],
                                     hp["weight_decay"], hp.get("backbone_lr_scale", 1.0))
    return build_optimizer(groups, hp["optimizer"], hp["lr"], hp.get("momentum", 0.9))


def train_torchvision(config: dict, args: argparse.Namespace, data: dict, epochs: int) -> dict[str, Any]:
    """The plain loop: torchvision's twin of our config's detector, same data and schedule."""
    dm, model = twin_and_data(config, args, data)
    hp = config["model"]
    steps = len(dm.train_dataloader())
    optimizer = config_optimizer(model, hp)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(int(round(hp.get("warmup_epochs", 1) * steps)), epochs * steps))
    # the config's weight EMA too, as our task keeps it: updated per step, validated
    ema = WeightEMA(model, hp["ema_decay"]) if hp.get("ema_decay") is not None else None
    return plain_detection_loop(model, dm, epochs, args.minutes, optimizer, schedule,
                                config["trainer"].get("gradient_clip_val"), ema)


def twin_and_data(config: dict, args: argparse.Namespace, data: dict) -> tuple[Any, nn.Module]:
    """The data module (set up for fit) and torchvision's twin of ``config``'s detector, with the
    random init `fit_detector` draws for the same seed."""
    from visionkit.tasks.detection import DetectionTask
    from visionkit.tasks.detection_datamodule import DetectionDataModule

    seed_all(args.seed)
    dm = DetectionDataModule(args.train_json, args.val_json, args.image_root, **data)
    ours = DetectionTask(num_classes=dm.num_classes, class_names=dm.classes,  # the same RNG draws
                         category_ids=dm.category_ids, **config["model"]).model  # as fit_detector
    model = torchvision_twin(ours)
    dm.setup("fit")
    return dm, model


def plain_detection_loop(model: nn.Module, dm: Any, epochs: int, minutes: float,
                         optimizer: torch.optim.Optimizer, schedule: Any, clip: float | None,
                         ema: WeightEMA | None) -> dict[str, Any]:
    """Train torchvision's ``model`` on ``dm`` (``schedule`` stepped per batch) until ``epochs`` or
    ``minutes`` run out, scoring val mAP (the EMA weights when kept) after every epoch."""
    train, val = dm.train_dataloader(), dm.val_dataloader()
    evaluator = DetectionEvaluator(dict(zip(range(1, dm.num_classes), dm.category_ids)))
    maps: list[float] = []
    maps50: list[float] = []
    elapsed: list[float] = []
    seed = torch.initial_seed()  # the run's seed, as `EpochSeeding` keeps it
    started = time.perf_counter()
    deadline = started + 60 * minutes
    for epoch in range(epochs):
        # as `detect fit` does each epoch: a fresh order and augmentation draw, the main process
        # reseeded from (seed, epoch)
        dm.set_epoch(epoch)
        seed_for_epoch(seed, epoch)
        model.train()
        for images, targets in train:
            losses = model(images, targets)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            schedule.step()
            if ema is not None:
                ema.update(model)
            if time.perf_counter() > deadline:
                break
        model.eval()
        evaluator.reset()
        if ema is not None:
            ema.swap(model)
        with torch.no_grad():
            for images, targets in val:
                evaluator.update(model(images), targets)
        if ema is not None:
            ema.swap(model)
        stats = evaluator.compute().stats
        maps.append(stats["AP"])
        maps50.append(stats["AP50"])
        elapsed.append(time.perf_counter() - started)
        if time.perf_counter() > deadline:
            break
    return {"best": round(max(maps), 4), "final": round(maps[-1], 4),
            "val_map": [round(v, 4) for v in maps], "val_map50": [round(v, 4) for v in maps50],
            "elapsed": [round(t, 1) for t in elapsed], "seconds": round(time.perf_counter() - started, 1)}


def plot_curves(results: dict[str, Any], path: str) -> None:
    """PNG of each run's val mAP against minutes of training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from visionkit.fileio import atomic_write_with

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, entry in results.items():
        ax.plot([t / 60 for t in entry["elapsed"]], entry["val_map"], marker="o", label=name)
    ax.set_xlabel("minutes of training")
    ax.set_ylabel("val COCO mAP")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def config_data(config: dict, args: argparse.Namespace) -> dict[str, Any]:
    """The config's data arguments, with ``--num-workers`` when given."""
    data = dict(config.get("data", {}))
    if args.num_workers is not None:
        data["num_workers"] = args.num_workers
    return data


def fit_ours(config: dict, args: argparse.Namespace, data: dict, epochs: int) -> dict[str, Any]:
    """Our `detect fit` of ``config`` within ``args.minutes``; the run's curves (`FitRecord`)."""
    with tempfile.TemporaryDirectory(prefix="vk_pretrained_det_") as tmp:
        record, _ = fit_detector(
            args.train_json, args.val_json, args.image_root, Path(tmp) / "ours", epochs=epochs,
            minutes=args.minutes, seed=args.seed, data=data, model=config["model"],
            trainer={"gradient_clip_val": config["trainer"].get("gradient_clip_val")})
    return record.to_dict()


def read_run(args: argparse.Namespace, runs: tuple[str, str]) -> tuple[dict, list[str], int]:
    """(config, the ``--which`` runs among ``runs``, planned epochs) of a side-by-side benchmark."""
    config = yaml.safe_load(Path(args.config).read_text())
    which = [w for w in args.which.split(",") if w]
    if set(which) - set(runs):
        raise ConfigError(f"--which takes {' and/or '.join(runs)}, got {args.which!r}")
    return config, which, args.epochs or config["trainer"]["max_epochs"]


def run(argv: list[str]) -> dict:
    """Parse options, train the chosen detectors, return the results."""
    args = _parser().parse_args(argv)
    config, which, epochs = read_run(args, ("ours", "torchvision"))
    data = config_data(config, args)
    results: dict[str, Any] = {}
    if "ours" in which:
        results["ours"] = fit_ours(config, args, data, epochs)
    if "torchvision" in which:
        results["torchvision"] = train_torchvision(config, args, data, epochs)
    if args.plot:
        plot_curves(results, args.plot)
    return {"benchmark": "pretrained-detection", "config": args.config, "model": config["model"]["name"],
            "train_json": args.train_json, "val_json": args.val_json, "epochs": epochs,
            "minutes": args.minutes, "seed": args.seed, "results": results}
