"""Pool fixed-size features from regions of interest (Fast R-CNN RoIPool, Mask R-CNN RoIAlign).

Convention: feature maps ``[N, C, H, W]``; RoIs are ``xyxy`` boxes in *image* pixels, given
either as a list with one ``[K_i, 4]`` tensor per image or as one ``[K, 5]`` tensor whose first
column is the image index. ``spatial_scale`` maps image pixels to feature cells (1/16 for a
stride-16 map). ``roi_pool`` rounds the box to cells and max-pools each of the output bins;
``roi_align`` averages bilinear samples (``sampling_ratio`` per bin side, adaptive when <= 0),
and with ``aligned=True`` shifts boxes by -0.5 cell so pixel centres line up (Detectron2).
The kernels are torchvision's (C++/CUDA), except RoIAlign on the CPU with a fixed
``sampling_ratio``: `visionkit.ops.roi_align_cpu` (multithreaded weighted gathers, equal to
torchvision's to float rounding, ~4x faster; its kernel stays the path when tracing, exporting or
compiling).

`MultiScaleRoIAlign` pools each RoI from one FPN level chosen by eq. 1 of the FPN paper,
``k = floor(k0 + log2(sqrt(area) / 224))`` clamped to the available levels, ``k0 = 4``.
Its call matches ``torchvision.ops.MultiScaleRoIAlign``: ``pooler(x, boxes, image_shapes)`` with
``x`` a dict of ``[N, C, h_l, w_l]`` maps (only those in ``featmap_names``, finest first),
per-image boxes in padded-image pixels and the images' ``(height, width)``. Level scales are
powers of two inferred from the largest image on every call (torchvision infers them once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torchvision.ops
from torch import Tensor, nn

from visionkit.ops.eager import capturing_graph
from visionkit.ops.roi_align_cpu import roi_align_gather

Boxes = Tensor | Sequence[Tensor]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def boxes_to_rois(boxes: Boxes) -> Tensor:
    """``[K, 5]`` RoIs (image index, x1, y1, x2, y2) from a per-image list of ``[K_i, 4]`` boxes."""
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"RoIs as one tensor must be [K, 5], got {list(boxes.shape)}")
        return boxes
    boxes = list(boxes)
    if not boxes:
        raise ValueError("RoIs as a list need one [K_i, 4] tensor per image, got an empty list")
    for i, b in enumerate(boxes):
        if b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes of image {i} must be [K, 4], got {list(b.shape)}")
    # Index columns shaped like each image's boxes (no Python-side counts), so traced and
    # exported graphs stay valid for any number of boxes.
    image_index = torch.cat([torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)])
    return torch.cat((image_index, torch.cat(boxes, dim=0)), dim=1)


def roi_pool(
    input: Tensor, boxes: Boxes, output_size: int | Sequence[int], spatial_scale: float = 1.0
) -> Tensor:
    """Max-pool each RoI into ``output_size`` bins: ``[K, C, out_h, out_w]``."""
    return torchvision.ops.roi_pool(input, boxes_to_rois(boxes), _pair(output_size), spatial_scale)


def roi_align(
    input: Tensor,
    boxes: Boxes,
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Average bilinear samples per bin of each RoI: ``[K, C, out_h, out_w]``."""
    rois = boxes_to_rois(boxes)
    if _gather_applies(input, sampling_ratio):
        return roi_align_gather(input, rois, _pair(output_size), spatial_scale, sampling_ratio, aligned)
    return torchvision.ops.roi_align(input, rois, _pair(output_size), spatial_scale, sampling_ratio, aligned)


def _gather_applies(input: Tensor, sampling_ratio: int) -> bool:
    """Our CPU path: float maps, a fixed sampling ratio, not while tracing, exporting or compiling."""
    return (not capturing_graph(input) and input.device.type == "cpu" and sampling_ratio > 0
            and input.dtype in (torch.float32, torch.float64))


def fpn_levels(
    boxes: Tensor,
    k_min: int,
    k_max: int,
    canonical_scale: int = 224,
    canonical_level: int = 4,
    eps: float = 1e-6,
) -> Tensor:
    """FPN level of each ``xyxy`` box as an index into the levels ``k_min..k_max`` (int64)."""
    scale = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    level = torch.floor(
        canonical_level + torch.log2(scale / canonical_scale) + torch.tensor(eps, dtype=scale.dtype)
    )
    return level.clamp(min=k_min, max=k_max).to(torch.int64) - k_min


def infer_scale(feature: Tensor, image_size: Sequence[int]) -> float:
    """Feature-to-image scale as a power of two, from heights: e.g. 50 rows of 800 -> 1/16."""
    return 2.0 ** round(math.log2(feature.shape[-2] / image_size[0]))


class MultiScaleRoIAlign(nn.Module):
    """RoIAlign from the FPN level each RoI's size selects; same interface as torchvision's."""

    def __init__(
        self,
        featmap_names: Sequence[str],
        output_size: int | Sequence[int],
        sampling_ratio: int = 2,
        *,
        canonical_scale: int = 224,
        canonical_level: int = 4,
        aligned: bool = False,
    ) -> None:
        """Pool the maps named ``featmap_names`` (finest first) to ``output_size`` bins."""
        super().__init__()
        self.featmap_names = list(featmap_names)
        self.output_size = _pair(output_size)
        self.sampling_ratio = sampling_ratio
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level
        self.aligned = aligned

    def extra_repr(self) -> str:
        return (
            f"featmap_names={self.featmap_names}, output_size={self.output_size}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )

    def forward(
        self,
        x: Mapping[str, Tensor],
        boxes: Sequence[Tensor],
        image_shapes: Sequence[tuple[int, int]],
    ) -> Tensor:
        """Pooled features ``[sum K_i, C, out_h, out_w]`` of every image's boxes, in order."""
        features = [v for k, v in x.items() if k in self.featmap_names]
        if not features:
            raise ValueError(f"none of {self.featmap_names} among the feature maps {list(x)}")
        if not image_shapes:
            raise ValueError("image_shapes must list the size of every image")
        largest = (max(s[0] for s in image_shapes), max(s[1] for s in image_shapes))
        scales = [infer_scale(f, largest) for f in features]
        rois = boxes_to_rois(boxes)

        def pool(feature: Tensor, level_rois: Tensor, scale: float) -> Tensor:
            return roi_align(feature, level_rois, self.output_size, scale,
                             self.sampling_ratio, self.aligned)

        if len(features) == 1:
            return pool(features[0], rois, scales[0])

        k_min = round(-math.log2(scales[0]))
        k_max = round(-math.log2(scales[-1]))
        levels = fpn_levels(rois[:, 1:], k_min, k_max, self.canonical_scale, self.canonical_level)
        first = features[0]
        result = first.new_zeros((rois.shape[0], first.shape[1], *self.output_size))
        for level, (feature, scale) in enumerate(zip(features, scales, strict=True)):
            index = torch.where(levels == level)[0]
            result[index] = pool(feature, rois[index], scale).to(result.dtype)
        return result
