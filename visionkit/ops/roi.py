"""Pool fixed-size features from regions of interest (Fast R-CNN RoIPool, Mask R-CNN RoIAlign).

Convention: feature maps ``[N, C, H, W]``; RoIs are ``xyxy`` boxes in *image* pixels, given
either as a list with one ``[K_i, 4]`` tensor per image or as one ``[K, 5]`` tensor whose first
column is the image index. ``spatial_scale`` maps image pixels to feature cells (1/16 for a
stride-16 map). ``roi_pool`` rounds the box to cells and max-pools each of the output bins;
``roi_align`` averages bilinear samples (``sampling_ratio`` per bin side, adaptive when <= 0),
and with ``aligned=True`` shifts boxes by -0.5 cell so pixel centres line up (Detectron2).
The kernels are torchvision's (C++/CUDA), except RoIAlign on the CPU with a fixed
``sampling_ratio``: `visionkit.ops.roi_align_cpu` (multithreaded weighted gathers, equal to
torchvision's to float rounding, ~4x faster; its kernel stays the path when tracing, scripting,
exporting or compiling).

Malformed RoIs (a tensor that is not ``[K, 5]``, an image's boxes not ``[K_i, 4]``, an empty
list) raise ``ValueError`` naming the shape and the image, where torchvision asserts
(``AssertionError``, which ``python -O`` strips): a wrong input is a value error, and stays one.

`MultiScaleRoIAlign` pools each RoI from one FPN level chosen by eq. 1 of the FPN paper,
``k = floor(k0 + log2(sqrt(area) / 224))`` clamped to the available levels, ``k0 = 4``.
Its call matches ``torchvision.ops.MultiScaleRoIAlign``: ``pooler(x, boxes, image_shapes)`` with
``x`` a dict of ``[N, C, h_l, w_l]`` maps (only those in ``featmap_names``, finest first),
per-image boxes in padded-image pixels and the images' ``(height, width)``. Level scales are
powers of two inferred from the largest image on every call (torchvision infers them once).
"""

import math

import torch
import torchvision.ops
from torch import Tensor, nn

from visionkit.ops.eager import capturing_graph
from visionkit.ops.roi_align_cpu import roi_align_gather

# RoIs: one [K, 5] tensor, or a list (any sequence, eagerly) of per-image [K_i, 4] boxes.
Boxes = Tensor | list[Tensor]
# Output size: one side, or (height, width).
Size = int | list[int] | tuple[int, int]


def _pair(size: Size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if isinstance(size, list):
        if len(size) != 2:
            raise ValueError(f"output_size must be an int or (height, width), got {size}")
        return int(size[0]), int(size[1])
    height, width = size  # a tuple (eagerly, any pair)
    return int(height), int(width)


def boxes_to_rois(boxes: Boxes) -> Tensor:
    """``[K, 5]`` RoIs (image index, x1, y1, x2, y2) from a per-image list of ``[K_i, 4]`` boxes."""
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"RoIs as one tensor must be [K, 5], got {list(boxes.shape)}")
        return boxes
    else:
        per_image = list(boxes)
        if len(per_image) == 0:
            raise ValueError("RoIs as a list need one [K_i, 4] tensor per image, got an empty list")
        columns: list[Tensor] = []
        for i, b in enumerate(per_image):
            if b.dim() != 2 or b.shape[1] != 4:
                raise ValueError(f"boxes of image {i} must be [K, 4], got {list(b.shape)}")
            # Index columns shaped like each image's boxes (no Python-side counts), so traced and
            # exported graphs stay valid for any number of boxes.
            columns.append(torch.full_like(b[:, :1], i))
        return torch.cat((torch.cat(columns), torch.cat(per_image, dim=0)), dim=1)


def roi_pool(input: Tensor, boxes: Boxes, output_size: Size, spatial_scale: float = 1.0) -> Tensor:
    """Max-pool each RoI into ``output_size`` bins: ``[K, C, out_h, out_w]``."""
    return torchvision.ops.roi_pool(input, boxes_to_rois(boxes), _pair(output_size), spatial_scale)


def roi_align(
    input: Tensor,
    boxes: Boxes,
    output_size: Size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Average bilinear samples per bin of each RoI: ``[K, C, out_h, out_w]``."""
    rois = boxes_to_rois(boxes)
    size = _pair(output_size)
    if not torch.jit.is_scripting() and _gather_applies(input, sampling_ratio):
        return _roi_align_gather(input, rois, size, spatial_scale, sampling_ratio, aligned)
    return torchvision.ops.roi_align(input, rois, size, spatial_scale, sampling_ratio, aligned)


@torch.jit.unused
def _gather_applies(input: Tensor, sampling_ratio: int) -> bool:
    """Our CPU path: float maps, a fixed sampling ratio, not while tracing, exporting or compiling."""
    return (not capturing_graph(input) and input.device.type == "cpu" and sampling_ratio > 0
            and input.dtype in (torch.float32, torch.float64))


@torch.jit.unused
def _roi_align_gather(input: Tensor, rois: Tensor, size: tuple[int, int], spatial_scale: float,
                      sampling_ratio: int, aligned: bool) -> Tensor:
    """`roi_align_gather`, which scripted code never reaches (`_gather_applies` is eager only)."""
    return roi_align_gather(input, rois, size, spatial_scale, sampling_ratio, aligned)


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


def infer_scale(feature: Tensor, image_size: list[int]) -> float:
    """Feature-to-image scale as a power of two, from heights: e.g. 50 rows of 800 -> 1/16."""
    return 2.0 ** float(round(_log2(feature.shape[-2] / image_size[0])))


def _log2(x: float) -> float:
    return math.log(x) / math.log(2.0)  # not math.log2: torch.jit.script has no log2 of floats


class MultiScaleRoIAlign(nn.Module):
    """RoIAlign from the FPN level each RoI's size selects; same interface as torchvision's."""

    def __init__(
        self,
        featmap_names: list[str],
        output_size: Size,
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
        # torchvision's repr, with ``aligned`` only where it differs from torchvision's pooler
        text = (f"featmap_names={self.featmap_names}, output_size={self.output_size}, "
                f"sampling_ratio={self.sampling_ratio}")
        return text + ", aligned=True" if self.aligned else text

    def forward(
        self,
        x: dict[str, Tensor],
        boxes: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> Tensor:
        """Pooled features ``[sum K_i, C, out_h, out_w]`` of every image's boxes, in order.

        Args:
            x: feature maps by name (any mapping, eagerly); those in ``featmap_names`` are used,
                finest first.
            boxes: per image, ``[K_i, 4]`` boxes in padded-image pixels.
            image_shapes: per image, its ``(height, width)``.
        """
        features: list[Tensor] = []
        for name, value in x.items():
            if name in self.featmap_names:
                features.append(value)
        if len(features) == 0:
            raise ValueError(f"none of {self.featmap_names} among the feature maps {list(x.keys())}")
        if len(image_shapes) == 0:
            raise ValueError("image_shapes must list the size of every image")
        largest = [max([s[0] for s in image_shapes]), max([s[1] for s in image_shapes])]
        scales = [infer_scale(f, largest) for f in features]
        rois = boxes_to_rois(boxes)
        if len(features) == 1:
            return self._pool(features[0], rois, scales[0])

        k_min = int(round(-_log2(scales[0])))
        k_max = int(round(-_log2(scales[-1])))
        levels = fpn_levels(rois[:, 1:], k_min, k_max, self.canonical_scale, self.canonical_level)
        first = features[0]
        out_h, out_w = self.output_size
        result = first.new_zeros((rois.shape[0], first.shape[1], out_h, out_w))
        for level, feature in enumerate(features):
            index = torch.where(levels == level)[0]
            result[index] = self._pool(feature, rois[index], scales[level]).to(result.dtype)
        return result

    def _pool(self, feature: Tensor, rois: Tensor, scale: float) -> Tensor:
        return roi_align(feature, rois, self.output_size, scale, self.sampling_ratio, self.aligned)
