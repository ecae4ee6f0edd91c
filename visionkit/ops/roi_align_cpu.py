"""RoIAlign on the CPU as weighted gathers: every output bin is a weighted sum of feature rows.

torchvision's CPU kernel loops over RoIs, bins and channels in one thread. Here the map is laid
out channels-last (``[N * H * W, C]``) and bilinear sampling is split by axis, each step one
``F.embedding_bag(..., per_sample_weights=..., mode="sum")`` (a multithreaded, vectorised
kernel with autograd): first every distinct map row a RoI samples is interpolated along x
into its output columns, then each output bin sums its ``2 * sampling_ratio`` sample rows with
the y weights (divided by the sample count). Small RoIs share rows, so this reads far fewer
feature rows than the ``4 * sampling_ratio²`` neighbours per bin done directly. Sample points,
clamping and the out-of-map rule (samples beyond one cell outside the map count as zero) follow
torchvision's kernel, so results agree to float rounding. Only a fixed ``sampling_ratio > 0``
is handled (adaptive grids vary per RoI); `visionkit.ops.roi.roi_align` picks this path on the
CPU when it applies. Without a gradient to carry back (inference), where RoIs are large enough
that their sample rows are mostly distinct, one gather of each bin's ``(2g)²`` neighbours
replaces the two. `visionkit benchmark ops` (1000 RoIs, 256 x 50 x 68): 0.19x torchvision's
time on one thread, 0.14x on two.

Shape letters in the comments: N images, C channels, H x W the map, K RoIs, oh x ow the output
bins, g = ``sampling_ratio`` (samples per bin along each axis), P distinct (RoI, map row) pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# An NCHW map gives strided feature rows, which embedding_bag gathers ~160 ns per row slower;
# laying the map out channels-last costs ~300 ns per map row (256 channels). Copy when the
# gathers read at least this many rows per map row (dense RoIs on a small map, not a few RoIs on
# a large FPN level). Channels-last maps need no copy.
_COPY_FROM_READS = 2
# Two gathers (x, then y) pay while RoIs share sample rows; past this share of distinct rows
# among their sample rows, one gather of every bin's neighbours is faster. `visionkit benchmark
# ops --roi-sweep` RoIs of 4, 8, 16, 32 cells: 0.13, 0.19, 0.29, 0.45 distinct; one gather's
# time over two (forward, 1 thread): 0.87, 1.12, 0.76, 0.72. Backward is another matter: on the
# sweep's RoIs forward + backward (2 threads) gave 1.29, 1.04, 0.90, 0.73, but a training step of
# the small-objects Lite0 FPN cascade 1.06, so with a gradient to carry back it is two gathers.
_SEPARABLE_BELOW = 0.2


def _axis(coords: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Low/high neighbour indices and weights along one axis for sample ``coords`` (any shape).

    As torchvision's kernel: a sample more than one cell outside ``[0, size)`` gets zero weight,
    one below 0 is clamped to 0, and one at or past the last cell uses that cell alone.
    """
    inside = ((coords >= -1.0) & (coords <= size)).to(coords.dtype)  # [...] 1.0 or 0.0
    coords = coords.clamp(min=0)  # [...]
    low = coords.floor().to(torch.int64)  # [...]
    at_edge = low >= size - 1  # [...] bool
    low = torch.where(at_edge, size - 1, low)  # [...] int64
    high = torch.where(at_edge, size - 1, low + 1)  # [...] int64
    coords = torch.where(at_edge, low.to(coords.dtype), coords)  # [...]
    frac = coords - low.to(coords.dtype)  # [...] in [0, 1)
    return low, high, (1 - frac) * inside, frac * inside  # [...] each


def roi_align_gather(input: Tensor, rois: Tensor, output_size: tuple[int, int], spatial_scale: float,
                     sampling_ratio: int, aligned: bool, separable: bool | None = None) -> Tensor:
    """RoIAlign of ``[K, 5]`` ``rois`` on ``input [N, C, H, W]``: ``[K, C, out_h, out_w]``.

    Args:
        input: the feature map, any memory format.
        rois: ``[K, 5]`` rows ``(image index, x1, y1, x2, y2)`` in input-image pixels, with the
            feature map's dtype.
        output_size: ``(out_h, out_w)`` bins per RoI.
        spatial_scale: feature-map cells per input-image pixel.
        sampling_ratio: samples per bin along each axis; must be > 0.
        aligned: shift boxes by half a cell (pixel-centre model) and allow RoIs smaller than a cell.
        separable: along x, then y (two gathers; fewer reads where RoIs share map rows), or every
            bin's ``(2g)²`` neighbours in one gather (larger RoIs, whose sample rows are mostly
            distinct: no intermediate rows to write and read back); None: two gathers while
            under `_SEPARABLE_BELOW` of the sample rows are distinct, and whenever ``input``
            needs a gradient (training).
    """
    if sampling_ratio <= 0:
        raise ValueError(f"the gather path needs a fixed sampling_ratio > 0, got {sampling_ratio}")
    num_images, channels, height, width = input.shape
    out_h, out_w = output_size
    if rois.shape[0] == 0:
        return input.new_zeros((0, channels, out_h, out_w))
    if rois.dtype != input.dtype:  # as torchvision's kernels require
        raise TypeError(f"rois must have the feature map's dtype {input.dtype}, got {rois.dtype}")
    dtype, device = input.dtype, input.device
    num_rois = len(rois)
    offset = 0.5 if aligned else 0.0
    x1, y1 = rois[:, 1] * spatial_scale - offset, rois[:, 2] * spatial_scale - offset  # [K], [K]
    roi_w = rois[:, 3] * spatial_scale - offset - x1  # [K]
    roi_h = rois[:, 4] * spatial_scale - offset - y1  # [K]
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)  # [K], [K]
    grid = sampling_ratio
    step = torch.arange(grid, dtype=dtype, device=device) + 0.5  # [g] sample offsets within a bin

    def samples(start: Tensor, length: Tensor, bins: int) -> Tensor:  # [K] -> [K, bins, g]
        size = (length / bins)[:, None, None]  # [K, 1, 1] bin size
        return (start[:, None, None] + torch.arange(bins, dtype=dtype, device=device)[None, :, None] * size
                + step[None, None, :] * size / grid)

    y_low, y_high, y_weight_low, y_weight_high = _axis(samples(y1, roi_h, out_h), height)  # [K, oh, g]
    x_low, x_high, x_weight_low, x_weight_high = _axis(samples(x1, roi_w, out_w), width)  # [K, ow, g]
    y_rows = torch.stack((y_low, y_high), -1).reshape(num_rois, -1)  # [K, oh * g * 2]
    y_weight = torch.stack((y_weight_low, y_weight_high), -1).reshape(num_rois, out_h, -1)  # [K, oh, g * 2]
    x_cols = torch.stack((x_low, x_high), -1).reshape(num_rois, out_w, -1)  # [K, ow, g * 2]
    x_weight = (torch.stack((x_weight_low, x_weight_high), -1).reshape(num_rois, out_w, -1)  # [K, ow, g * 2]
                / (grid * grid))

    image = rois[:, 0].to(torch.int64)  # [K]
    feature_rows = input.permute(0, 2, 3, 1).reshape(num_images * height * width, channels)  # [N*H*W, C]

    def laid_out(reads: int) -> Tensor:
        """The feature rows, copied channels-last when ``reads`` make that pay."""
        if not feature_rows.is_contiguous() and reads >= _COPY_FROM_READS * feature_rows.shape[0]:
            return feature_rows.contiguous()  # [N * H * W, C]
        return feature_rows

    rows_sorted, order = y_rows.sort(dim=1)  # [K, oh * g * 2] each
    first = torch.ones_like(rows_sorted, dtype=torch.bool)  # [K, oh * g * 2] first of its row
    first[:, 1:] = rows_sorted[:, 1:] != rows_sorted[:, :-1]
    distinct = first.sum(1)  # [K] distinct rows per RoI
    bag = 2 * grid  # neighbours per bin along one axis
    if separable is None:  # with a gradient to carry back, two: their backward scatters fewer rows
        separable = (torch.is_grad_enabled() and input.requires_grad
                     or int(distinct.sum()) < _SEPARABLE_BELOW * y_rows.numel())
    if not separable:  # one gather: each bin's 2g rows x 2g columns
        row_start = (image[:, None, None] * height + y_rows.view(num_rois, out_h, bag)) * width  # [K, oh, 2g]
        index = row_start[:, :, None, :, None] + x_cols[:, None, :, None, :]  # [K, oh, ow, 2g, 2g]
        weight = y_weight[:, :, None, :, None] * x_weight[:, None, :, None, :]  # [K, oh, ow, 2g, 2g]
        pooled = F.embedding_bag(index.reshape(-1, bag * bag), laid_out(index.numel()), mode="sum",
                                 per_sample_weights=weight.reshape(-1, bag * bag))  # [K * oh * ow, C]
        return pooled.reshape(-1, out_h, out_w, channels).permute(0, 3, 1, 2).contiguous()  # [K, C, oh, ow]

    # Stage 1: each RoI's distinct rows, interpolated along x into its out_w bins.
    slot_sorted = first.cumsum(1) - 1  # [K, oh * g * 2] distinct-row slot of each sorted entry
    slot = torch.empty_like(slot_sorted).scatter_(1, order, slot_sorted)  # [K, oh * g * 2] unsorted
    start = distinct.cumsum(0) - distinct  # [K] first pair of each RoI
    roi_of_pair = torch.repeat_interleave(torch.arange(num_rois, device=device), distinct)  # [P]
    row_of_pair = rows_sorted[first]  # [P]
    row_start = (image[roi_of_pair] * height + row_of_pair) * width  # [P] first feature row of the map row
    x_index = row_start[:, None, None] + x_cols[roi_of_pair]  # [P, ow, g * 2]
    feature_rows = laid_out(x_index.numel())  # [N * H * W, C]
    x_bag = x_index.shape[-1]  # g * 2 samples per bag
    along_x = F.embedding_bag(x_index.reshape(-1, x_bag), feature_rows, mode="sum",  # [P * ow, C]
                              per_sample_weights=x_weight[roi_of_pair].reshape(-1, x_bag))

    # Stage 2: each bin sums its 2 * g sample rows (already along x) with the y weights.
    pair = (start[:, None] + slot).reshape(num_rois, out_h, 1, -1)  # [K, oh, 1, g * 2]
    y_index = pair * out_w + torch.arange(out_w, device=device)[None, None, :, None]  # [K, oh, ow, g * 2]
    y_bag_weight = y_weight[:, :, None, :].expand(-1, -1, out_w, -1)  # [K, oh, ow, g * 2]
    y_bag = y_index.shape[-1]  # g * 2 samples per bag
    pooled = F.embedding_bag(y_index.reshape(-1, y_bag), along_x, mode="sum",  # [K * oh * ow, C]
                             per_sample_weights=y_bag_weight.reshape(-1, y_bag))
    return pooled.reshape(-1, out_h, out_w, channels).permute(0, 3, 1, 2).contiguous()  # [K, C, oh, ow]
