"""Anchor boxes tiled over one or several feature maps.

Convention: anchors are ``xyxy`` in pixels of the padded input batch. On a level with stride
``(sy, sx) = (H // h, W // w)`` (image ``H x W``, feature map ``h x w``), the location in row i,
column j is centred at ``(j * sx, i * sy)`` and carries ``len(sizes) * len(aspect_ratios)``
anchors, aspect ratio = height / width, of area ``size**2`` (corners rounded to integers).
Order: level, then row, column, then ratio, then size — the same as torchvision, so
``AnchorGenerator(sizes, ratios)(batch, feats)`` equals torchvision's
``anchor_utils.AnchorGenerator(sizes, ratios)(ImageList(batch, image_sizes), feats)``.

Call: ``generator(images, feature_maps)`` where ``images`` is the padded batch ``[N, C, H, W]``
or just its shape, and ``feature_maps`` the per-level ``[N, C_l, h_l, w_l]`` maps (a list, or a
dict in level order). It returns one ``[sum_l h_l * w_l * k_l, 4]`` tensor per image, with the
first map's dtype and device. Grids are cached per (map sizes, strides, dtype, device), so
repeated image sizes cost a copy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn


def cell_anchors(
    sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Zero-centred ``xyxy`` anchors ``[len(ratios) * len(sizes), 4]``, ratio-major order."""
    scales = torch.as_tensor(sizes, dtype=dtype, device=device)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return (torch.stack((-ws, -hs, ws, hs), dim=1) / 2).round()


class AnchorGenerator(nn.Module):
    """Tile ``len(sizes[l]) * len(aspect_ratios[l])`` anchors per location of each feature level."""

    def __init__(
        self,
        sizes: Sequence[Sequence[float]] | Sequence[float] = ((128, 256, 512),),
        aspect_ratios: Sequence[Sequence[float]] | Sequence[float] = ((0.5, 1.0, 2.0),),
        *,
        cache_size: int = 16,
    ) -> None:
        """Per-level sizes and ratios; flat sizes: one size per level; flat ratios: every level."""
        super().__init__()
        if not isinstance(sizes[0], (list, tuple)):
            sizes = tuple((s,) for s in sizes)
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (aspect_ratios,) * len(sizes)
        if len(sizes) != len(aspect_ratios):
            raise ValueError(
                f"{len(sizes)} levels of sizes but {len(aspect_ratios)} levels of aspect ratios"
            )
        self.sizes = tuple(tuple(level) for level in sizes)
        self.aspect_ratios = tuple(tuple(level) for level in aspect_ratios)
        self.cell_anchors = [
            cell_anchors(s, r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)
        ]
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, Tensor] = OrderedDict()

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, aspect_ratios={self.aspect_ratios}"

    def num_anchors_per_location(self) -> list[int]:
        """Anchors per feature-map location, one count per level."""
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)]

    def grid_anchors(
        self,
        grid_sizes: Sequence[tuple[int, int]],
        strides: Sequence[tuple[int, int]],
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> list[Tensor]:
        """Per level, anchors ``[h * w * k, 4]`` for grids ``(h, w)`` with strides ``(sy, sx)``."""
        if not len(grid_sizes) == len(strides) == len(self.cell_anchors):
            raise ValueError(
                f"{len(grid_sizes)} feature maps but anchors configured for "
                f"{len(self.cell_anchors)} levels (one sizes/aspect_ratios entry per level)"
            )
        out = []
        for (grid_h, grid_w), (stride_h, stride_w), base in zip(
            grid_sizes, strides, self.cell_anchors, strict=True
        ):
            base = base.to(dtype=dtype, device=device)
            xs = torch.arange(grid_w, dtype=dtype, device=device) * stride_w
            ys = torch.arange(grid_h, dtype=dtype, device=device) * stride_h
            shift_y, shift_x = torch.meshgrid(ys, xs, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            out.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
        return out

    def forward(
        self,
        images: Tensor | Sequence[int],
        feature_maps: Sequence[Tensor] | Mapping[str, Tensor],
    ) -> list[Tensor]:
        """Anchors of every level, one tensor per image of the batch ``images`` (or its shape)."""
        shape = tuple(images.shape) if isinstance(images, Tensor) else tuple(images)
        num_images, image_h, image_w = int(shape[0]), int(shape[-2]), int(shape[-1])
        if isinstance(feature_maps, Mapping):
            feature_maps = feature_maps.values()
        maps = list(feature_maps)
        grid_sizes = tuple((int(f.shape[-2]), int(f.shape[-1])) for f in maps)
        strides = tuple((image_h // max(h, 1), image_w // max(w, 1)) for h, w in grid_sizes)
        dtype, device = maps[0].dtype, maps[0].device

        key = (grid_sizes, strides, dtype, device)
        anchors = self._cache.get(key)
        if anchors is None:
            anchors = torch.cat(self.grid_anchors(grid_sizes, strides, dtype, device))
            self._cache[key] = anchors
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return [anchors.clone() for _ in range(num_images)]
