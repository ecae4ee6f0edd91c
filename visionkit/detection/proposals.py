"""Region proposals for R-CNN and Fast R-CNN: `SelectiveSearch` and the per-batch helpers.

Proposals are class-agnostic ``xyxy`` float32 boxes in the pixels of the image they belong to,
best-ranked first. A detector takes them from the caller (cached per dataset, see
`visionkit.data.proposal_cache`) or computes them with its ``proposal_generator``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from visionkit.detection.selective_search import SelectiveSearch
from visionkit.detection.targets import training_targets

ProposalGenerator = Callable[[np.ndarray], np.ndarray]

__all__ = ["ProposalGenerator", "SelectiveSearch", "image_proposals", "proposal_inputs", "to_uint8_hwc"]


def to_uint8_hwc(image: Tensor) -> np.ndarray:
    """RGB uint8 HWC array of a float ``[3, H, W]`` image in 0–1."""
    return (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def image_proposals(images: Sequence[Tensor], given: Sequence[Tensor] | None,
                    generator: ProposalGenerator | None, limit: int) -> list[Tensor]:
    """The first ``limit`` proposals of each image: ``given`` ones, else the generator's."""
    if given is None:
        if generator is None:
            raise ValueError("this detector has no proposal_generator: pass proposals= (one "
                             "[P, 4] xyxy tensor per image)")
        given = [torch.from_numpy(generator(to_uint8_hwc(image))) for image in images]
    if len(given) != len(images):
        raise ValueError(f"{len(images)} images but {len(given)} proposal tensors")
    out = []
    for i, (image, boxes) in enumerate(zip(images, given, strict=True)):
        if boxes.dim() != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"proposals of image {i} must be [P, 4] xyxy, got {list(boxes.shape)}")
        out.append(boxes[:limit].to(device=image.device, dtype=torch.float32))
    return out


def proposal_inputs(
    model: nn.Module, images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]] | None,
    proposals: Sequence[Tensor] | None,
) -> tuple[list[dict[str, Tensor]] | None, list[Tensor]]:
    """What a proposal detector's forward starts from: checked targets (training mode, else None)
    and each image's proposals, capped by ``model.max_proposals`` (train, test)."""
    checked = training_targets(targets, type(model).__name__) if model.training else None
    boxes = image_proposals(images, proposals, model.proposal_generator,
                            model.max_proposals[0 if model.training else 1])
    return checked, boxes

