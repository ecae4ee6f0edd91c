"""Batch-level MixUp and CutMix with label smoothing, producing soft targets `[B, C]`.

Pairs each image with the batch flipped (image i with B-1-i). The soft targets go straight
into `torch.nn.functional.cross_entropy`, which accepts class probabilities.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot targets with `smoothing` mass spread evenly over all classes."""
    off = smoothing / num_classes
    return F.one_hot(labels, num_classes).float() * (1.0 - smoothing) + off


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator
               ) -> tuple[int, int, int, int]:
    """A random box (y0, y1, x0, x1) covering about 1 - lam of the image, clipped to it."""
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    return (max(cy - ch // 2, 0), min(cy + ch // 2, height),
            max(cx - cw // 2, 0), min(cx + cw // 2, width))


class MixupCutmix:
    """Apply MixUp or CutMix to a batch with probability `prob`; CutMix with `switch_prob`."""

    def __init__(self, num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0,
                 prob: float = 1.0, switch_prob: float = 0.5, label_smoothing: float = 0.0,
                 seed: int | None = None) -> None:
        self.num_classes = num_classes
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.prob = prob
        self.switch_prob = switch_prob
        self.label_smoothing = label_smoothing
        self.rng = np.random.default_rng(seed)

    @property
    def active(self) -> bool:
        """True when either MixUp or CutMix can fire."""
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed images and soft targets; unmixed batches get (smoothed) one-hot targets."""
        targets = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        if not self.active or self.rng.random() >= self.prob:
            return images, targets
        use_cutmix = self.cutmix_alpha > 0 and (
            self.mixup_alpha <= 0 or self.rng.random() < self.switch_prob)
        if use_cutmix:
            lam = float(self.rng.beta(self.cutmix_alpha, self.cutmix_alpha))
            y0, y1, x0, x1 = cutmix_box(images.shape[-2], images.shape[-1], lam, self.rng)
            images = images.clone()
            images[..., y0:y1, x0:x1] = images.flip(0)[..., y0:y1, x0:x1]
            lam = 1.0 - (y1 - y0) * (x1 - x0) / (images.shape[-2] * images.shape[-1])
        else:
            lam = float(self.rng.beta(self.mixup_alpha, self.mixup_alpha))
            images = images * lam + images.flip(0) * (1.0 - lam)
        return images, targets * lam + targets.flip(0) * (1.0 - lam)
