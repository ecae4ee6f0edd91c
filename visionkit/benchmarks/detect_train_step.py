"""`detect-train-step`: our Faster R-CNN's training step vs torchvision's `FasterRCNN`, same model.

For each config (``path[:min_size]``), our detector is built as `detect fit` builds it (random
init: no download) and torchvision's twin from it (`pretrained_detection.torchvision_twin`: our
backbone body, torchvision's FPN, anchors, RPN, RoIAlign pooler and heads, our weights). Both
take the same batches (``--batch`` images of ``--height`` x ``--width``, each with BCCD-like
boxes: ~13 objects of 20-200 px, or real images from ``--train-json``), each with its own copy
of the config's optimizer, parameter groups and gradient clipping. A step is forward (losses) +
backward + clipping + optimizer step. Rounds alternate which model goes first; the figure is
the median seconds per step after ``--warmup`` rounds, and the ratio ours / torchvision.

Step 0 runs both from the same weights and the same random draws (the RPN's and RoI heads'
samplers draw alike under one seed), so their losses must be equal: the largest difference is
reported (``step0_loss_max_abs_diff``). Per stage (median seconds per step): transform,
backbone, rpn, roi_heads (forward, timed by hooks), backward, optimizer (clipping + step); with
``--train-json``, ``data``: the seconds the config's data pipeline takes per batch in this
process (the same for both detectors, off the training thread when loader workers run).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from visionkit.benchmarks.detect_latency import STAGES, StageTimer, torchvision_sizes
from visionkit.benchmarks.pretrained_detection import config_optimizer, torchvision_twin
from visionkit.tasks.fitting import seed_all

DEFAULT_CONFIGS = ["configs/detect/fasterrcnn_resnet18_fpn.yaml",
                   "configs/detect/fasterrcnn_mobilenet_v3_large_fpn.yaml:320"]
STEP_STAGES = (*STAGES, "backward", "optimizer")
Batch = tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]


def random_scenes(count: int, batch: int, height: int, width: int, classes: int, seed: int) -> list[Batch]:
    """``count`` batches of random images with BCCD-like boxes (8-18 per image, 20-200 px)."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        images, targets = [], []
        for _ in range(batch):
            images.append(torch.rand(3, height, width, generator=g))
            n = int(torch.randint(8, 19, (1,), generator=g))
            sizes = 20 + 180 * torch.rand(n, 2, generator=g)  # [n, 2] (w, h)
            corner = torch.rand(n, 2, generator=g) * (torch.tensor([width, height]) - sizes)
            boxes = torch.cat([corner, corner + sizes], dim=1)  # [n, 4] xyxy inside the image
            targets.append({"boxes": boxes, "labels": torch.randint(1, classes, (n,), generator=g)})
        batches.append((images, targets))
    return batches


def real_batches(config: dict, args: argparse.Namespace) -> tuple[list[Batch], int, float]:
    """``args.steps`` batches of the config's training pipeline on ``args.train_json``, the
    number of classes (with background) and the mean seconds the pipeline took per batch."""
    from visionkit.tasks.detection_datamodule import DetectionDataModule

    data = {**config.get("data", {}), "batch_size": args.batch, "num_workers": 0}
    dm = DetectionDataModule(args.train_json, args.train_json, args.image_root, **data)
    dm.setup("fit")
    batches, started = [], time.perf_counter()
    for images, targets in dm.train_dataloader():
        batches.append((images, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]))
        if len(batches) == args.steps:
            break
    return batches, dm.num_classes, (time.perf_counter() - started) / len(batches)


def build_pair(config: dict, min_size: int | None, num_classes: int, seed: int
               ) -> tuple[nn.Module, nn.Module]:
    """Our detector as `detect fit` builds it from ``config`` (random init) and torchvision's
    twin with the same weights, both in training mode."""
    from visionkit.tasks.detection import DetectionTask

    hp = {**config["model"], "pretrained": None, "pretrained_backbone": None}
    options = dict(hp.get("faster_rcnn") or {})
    if min_size:
        options.update(torchvision_sizes(min_size))
    hp["faster_rcnn"] = options
    seed_all(seed)
    ours = DetectionTask(num_classes=num_classes, **hp).model.train()
    return ours, torchvision_twin(ours).train()


class StepRunner:
    """One detector, its optimizer and stage timers; `step` runs and times one training step."""

    def __init__(self, model: nn.Module, config: dict) -> None:
        self.model = model
        self.optimizer = config_optimizer(model, config["model"])
        self.clip = config.get("trainer", {}).get("gradient_clip_val")
        self.timer = StageTimer(model)
        self.seconds: list[float] = []
        self.stages: dict[str, list[float]] = {stage: [] for stage in STEP_STAGES}

    def step(self, batch: Batch, record: bool) -> dict[str, float]:
        """One training step on ``batch``; its losses. ``record``: keep the timings."""
        images, targets = batch
        self.timer.take()
        started = time.perf_counter()
        losses = self.model(images, targets)
        forward_end = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        backward_end = time.perf_counter()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        ended = time.perf_counter()
        stages = self.timer.take()
        if record:
            self.seconds.append(ended - started)
            for stage in STAGES:
                self.stages[stage].append(stages.get(stage, 0.0))
            self.stages["backward"].append(backward_end - forward_end)
            self.stages["optimizer"].append(ended - backward_end)
        return {k: float(v.detach()) for k, v in losses.items()}


def compare(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    """Time one config's pair; the JSON-ready dict."""
    path, _, size = spec.partition(":")
    config = yaml.safe_load(Path(path).read_text())
    data_s = None
    if args.train_json:
        batches, num_classes, data_s = real_batches(config, args)
    else:
        num_classes = 4  # background + 3, as BCCD
        batches = random_scenes(args.steps, args.batch, args.height, args.width, num_classes, args.seed)
    ours, theirs = build_pair(config, int(size) if size else None, num_classes, args.seed)
    runners = {"ours": StepRunner(ours, config), "torchvision": StepRunner(theirs, config)}
    first: dict[str, dict[str, float]] = {}
    for key, runner in runners.items():  # step 0: same weights, same draws
        torch.manual_seed(args.seed)
        first[key] = runner.step(batches[0], record=False)
    diff = max(abs(first["ours"][k] - first["torchvision"][k]) for k in first["torchvision"])
    for round_ in range(args.warmup + args.repeats):
        order = list(runners) if round_ % 2 == 0 else list(reversed(runners))
        for key in order:
            for batch in batches:
                runners[key].step(batch, record=round_ >= args.warmup)
    median = {k: statistics.median(t.seconds) for k, t in runners.items()}
    stages = {stage: {k: round(statistics.median(t.stages[stage]), 4) for k, t in runners.items()}
              for stage in STEP_STAGES}
    for values in stages.values():
        values["ratio"] = round(values["ours"] / values["torchvision"], 3) if values["torchvision"] else None
    if data_s is not None:
        stages["data"] = {"seconds_per_batch": round(data_s, 4)}
    options = ours.config
    return {"config": path, "model": config["model"]["name"], "min_size": options.get("min_size"),
            "max_size": options.get("max_size"), "batch": args.batch,
            **{f"{k}_s": round(v, 4) for k, v in median.items()},
            "ratio": round(median["ours"] / median["torchvision"], 3),
            "step0_losses": first, "step0_loss_max_abs_diff": diff, "losses_equal": diff <= 1e-4,
            "stages": stages, "steps_timed": len(runners["ours"].seconds)}


def run(argv: list[str]) -> dict:
    """Parse options, time each config's pair, return the JSON dict."""
    parser = argparse.ArgumentParser(prog="visionkit benchmark detect-train-step", description=__doc__)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS,
                        help="detection configs, each optionally with :min_size (max_size follows at "
                             "torchvision's 1333/800)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--train-json", default=None, help="real batches from this COCO file instead")
    parser.add_argument("--image-root", default=None, help="with --train-json")
    parser.add_argument("--steps", type=int, default=3, help="batches per round")
    parser.add_argument("--repeats", type=int, default=4, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.train_json and not args.image_root:
        parser.error("--train-json needs --image-root")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = [compare(spec, args) for spec in args.configs]
    return {"benchmark": "detect-train-step", "device": "cpu", "threads": torch.get_num_threads(),
            "image": [args.height, args.width] if not args.train_json else args.train_json,
            "results": results}
