"""Sample a fixed-size, class-balanced minibatch of anchors or proposals per image.

Input labels per image: ``>= 1`` positive, ``0`` negative, ``-1`` (or any other negative) ignored.
Per image, up to ``batch_size_per_image * positive_fraction`` positives are drawn uniformly at
random, and negatives fill the rest of the batch (fewer when there are not enough).
Randomness comes from ``torch.randperm`` with the given ``torch.Generator`` (torch's global
generator of the labels' device when none is given — then results equal
``torchvision.models.detection._utils.BalancedPositiveNegativeSampler`` under the same seed).
"""

from __future__ import annotations

import torch
from torch import Tensor


class BalancedPositiveNegativeSampler:
    """Draw per-image masks of sampled positives and negatives with a fixed positive fraction."""

    def __init__(
        self,
        batch_size_per_image: int,
        positive_fraction: float,
        generator: torch.Generator | None = None,
    ) -> None:
        """E.g. RPN (256, 0.5), RoI heads (512, 0.25); ``generator`` makes draws reproducible."""
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.generator = generator

    @torch.jit.unused
    def __repr__(self) -> str:
        return (
            f"BalancedPositiveNegativeSampler(batch_size_per_image={self.batch_size_per_image}, "
            f"positive_fraction={self.positive_fraction})"
        )

    def _choose(self, candidates: Tensor, count: int) -> Tensor:
        """``count`` distinct entries of ``candidates`` in random order."""
        generator = self.generator
        device = candidates.device
        if generator is not None and not torch.jit.is_scripting():
            device = _generator_device(generator)  # scripted: a generator on the labels' device
        order = torch.randperm(candidates.numel(), generator=generator, device=device)
        return candidates[order[:count].to(candidates.device)]

    def __call__(self, matched_idxs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per image, uint8 masks (shaped like the labels) of sampled positives and negatives."""
        pos_masks: list[Tensor] = []
        neg_masks: list[Tensor] = []
        max_pos = int(self.batch_size_per_image * self.positive_fraction)
        for labels in matched_idxs:
            positive = torch.where(labels >= 1)[0]
            negative = torch.where(labels == 0)[0]
            num_pos = min(positive.numel(), max_pos)
            num_neg = min(negative.numel(), self.batch_size_per_image - num_pos)

            pos_mask = torch.zeros_like(labels, dtype=torch.uint8)
            neg_mask = torch.zeros_like(labels, dtype=torch.uint8)
            pos_mask[self._choose(positive, num_pos)] = 1
            neg_mask[self._choose(negative, num_neg)] = 1
            pos_masks.append(pos_mask)
            neg_masks.append(neg_mask)
        return pos_masks, neg_masks


@torch.jit.unused
def _generator_device(generator: torch.Generator) -> torch.device:
    return generator.device
