"""Optimizers and LR schedules by name, for the Lightning tasks' `configure_optimizers`."""

from __future__ import annotations

import math

import torch

from visionkit.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "onecycle")


def build_optimizer(param_groups: list[dict], name: str, lr: float, momentum: float = 0.9,
                    nesterov: bool = False) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam, AdamW or RMSprop over pre-built parameter groups."""
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=momentum, nesterov=nesterov)
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(param_groups, lr=lr, momentum=momentum)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def warmup_cosine(warmup_steps: int, total_steps: int, final_fraction: float = 0.0):
    """LR factor per step: linear warmup from ~0 to 1, then cosine down to `final_fraction`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, name: str, *, total_steps: int,
                    steps_per_epoch: int, warmup_epochs: float = 0.0, step_epochs: int = 30,
                    gamma: float = 0.1) -> dict | None:
    """A Lightning lr_scheduler config dict (stepped per batch), or None for a constant LR."""
    if name == "none":
        return None
    if name == "step":
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_epochs, gamma=gamma)
        return {"scheduler": sched, "interval": "epoch"}
    if name == "cosine":
        warmup = int(round(warmup_epochs * steps_per_epoch))
        sched = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, total_steps))
        return {"scheduler": sched, "interval": "step"}
    if name == "onecycle":
        if total_steps < 4:  # too short for two phases (OneCycleLR divides by a phase's length)
            sched = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(0, total_steps))
            return {"scheduler": sched, "interval": "step"}
        sched = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total_steps,
            pct_start=max(0.05, min(0.5, warmup_epochs * steps_per_epoch / max(total_steps, 1))))
        return {"scheduler": sched, "interval": "step"}
    raise ConfigError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
