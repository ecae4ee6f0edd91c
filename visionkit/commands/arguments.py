"""Argument types the commands share: a bad value stops argparse with one line naming the flag."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer ≥ 1 (batch sizes, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def probability(text: str) -> float:
    """A number in [0, 1] (score thresholds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1] (a score), got {value}")
    return value


CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".onnx")


def split_checkpoints(values: list[str]) -> tuple[list[str], list[str]]:
    """``--ckpt A.ckpt B.ckpt photos/``: the leading model files (ending .ckpt, .pt, .pth, .onnx),
    then the image sources (the first value is a checkpoint whatever its name)."""
    count = 1
    while count < len(values) and values[count].lower().endswith(CHECKPOINT_SUFFIXES):
        count += 1
    return values[:count], values[count:]
