"""`train-step` benchmark: our ClassificationTask under Lightning vs a plain PyTorch loop.

Same model (``create_classifier``), optimizer (AdamW, the task's parameter groups), data
(in-memory random images, one fixed set of batches) and step count. Each round runs both,
alternating which goes first, and times from the start of the first batch's step to the end of
the last (Lightning: its batch hooks; setup, teardown and the epoch-end checkpoint are left
out); the figure is the median time per step over the rounds after a warm-up round, and the
ratio is Lightning's over the plain loop's. ``--compile`` adds the task with ``compile=True``
(``compiled_over_lightning``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch.utils.data import DataLoader, Dataset


class Batches(Dataset):
    """Fixed random images and labels as the dicts `ClassificationTask` trains on."""

    def __init__(self, count: int, size: int, classes: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(count, 3, size, size, generator=g)
        self.labels = torch.randint(0, classes, (count,), generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i], "path": f"random/{i}"}


def collate(items: list[dict]) -> dict:
    """Stack a batch the way `collate_classification` does."""
    return {"image": torch.stack([it["image"] for it in items]),
            "label": torch.stack([it["label"] for it in items]), "path": [it["path"] for it in items]}


def plain_loop(task, loader: DataLoader, _root: str, skip: int = 0) -> float:
    """Seconds from batch ``skip``'s step to the last's, with a hand-written loop on ``task.model``."""
    import torch.nn.functional as F

    from visionkit.models import parameter_groups
    from visionkit.tasks.optim import build_optimizer

    hp, model = task.hparams, task.model.train()
    optimizer = build_optimizer(parameter_groups(model.layer_groups(), hp.lr, hp.weight_decay,
                                                 hp.group_lr_decay), hp.optimizer, hp.lr)
    started = None
    for index, batch in enumerate(loader):
        if index == skip:
            started = time.perf_counter()
        loss = F.cross_entropy(model(batch["image"]), batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def lightning_loop(task, loader: DataLoader, root: str, skip: int = 0) -> float:
    """Seconds from batch ``skip``'s step to the last's inside `Trainer.fit` (no validation)."""
    from visionkit.tasks.fitting import timed_fit

    return timed_fit(task, loader, root, skip)


def run(argv: list[str]) -> dict:
    """Parse options, time both loops alternately; the JSON-ready result."""
    from visionkit.tasks.classification import ClassificationTask

    parser = argparse.ArgumentParser(prog="visionkit benchmark train-step", description=__doc__)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per timed run")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true",
                        help="also time the task with compile=True; every loop then times from its "
                             "second step (the first one compiles)")
    args = parser.parse_args(argv)
    if args.steps <= int(args.compile):
        parser.error("--steps must be at least 1 (2 with --compile: its first step is not timed)")

    data = Batches(args.steps * args.batch_size, args.size, args.classes, args.seed)
    loader = DataLoader(data, batch_size=args.batch_size, collate_fn=collate)

    def fresh_task(compile: bool = False) -> ClassificationTask:
        torch.manual_seed(args.seed)
        return ClassificationTask(args.backbone, args.classes, optimizer="adamw", lr=1e-3,
                                  scheduler="none", image_size=args.size, compile=compile)

    skip = int(args.compile)
    variants = {"plain": (plain_loop, False), "lightning": (lightning_loop, False)}
    if args.compile:
        variants["lightning_compiled"] = (lightning_loop, True)
    times: dict[str, list[float]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as root:
        for r in range(args.rounds + 1):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                loop, compile = variants[name]
                seconds = loop(fresh_task(compile), loader, root, skip)
                if r > 0:
                    times[name].append(seconds / (args.steps - skip))
    per_step = {k: statistics.median(v) for k, v in times.items()}
    extra = ({"compiled_over_lightning": round(per_step["lightning_compiled"] / per_step["lightning"], 3)}
             if args.compile else {})
    return {
        "benchmark": "train-step",
        "backbone": args.backbone, "input": [3, args.size, args.size], "batch_size": args.batch_size,
        "steps": args.steps, "rounds": args.rounds, "threads": torch.get_num_threads(),
        "seconds_per_step": {k: round(v, 4) for k, v in per_step.items()},
        "lightning_over_plain": round(per_step["lightning"] / per_step["plain"], 3), **extra,
        "target": "lightning_over_plain <= 1.05",
    }
