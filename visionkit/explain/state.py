"""Running a model temporarily in eval mode, leaving every module's own mode as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put all modules in eval mode; afterwards restore each module's `training` flag exactly."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


@contextmanager
def parameters_requiring_grad(model: nn.Module) -> Iterator[nn.Module]:
    """Let every parameter require grad (so frozen layers still build a graph); restore the flags."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(True)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
