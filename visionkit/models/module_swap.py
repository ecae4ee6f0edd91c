"""Swap child modules in place for replacements that share their parameters."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def swap_children(model: nn.Module, eligible: Callable[[nn.Module], bool],
                  replacement: Callable[[nn.Module], nn.Module]) -> int:
    """Replace every ``eligible`` descendant of ``model`` by ``replacement(child)`` (same training
    mode), in place; how many were replaced. Hooks on the replaced modules are not carried over."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if eligible(child):
                new = replacement(child)
                new.train(child.training)
                setattr(module, name, new)
                swapped += 1
    return swapped
