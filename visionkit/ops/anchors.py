"""Anchor boxes tiled over one or several feature maps.

Convention: anchors are ``xyxy`` in pixels of the padded input batch. On a level with stride
``(sy, sx) = (H // h, W // w)`` (image ``H x W``, feature map ``h x w``), the location in row i,
column j is centred at ``(j * sx, i * sy)`` and carries ``len(sizes) * len(aspect_ratios)``
anchors, aspect ratio = height / width, of area ``size**2`` (corners rounded to integers).
Order: level, then row, column, then ratio, then size — the same as torchvision, so
``AnchorGenerator(sizes, ratios)(batch, feats)`` equals torchvision's
``anchor_utils.AnchorGenerator(sizes, ratios)(ImageList(batch, image_sizes), feats)``.

Call: ``generator(images, feature_maps)`` where ``images`` is the padded batch ``[N, C, H, W]``,
just its shape, or torchvision's ``ImageList``, and ``feature_maps`` the per-level
``[N, C_l, h_l, w_l]`` maps (a list, or a dict in level order). It returns one
``[sum_l h_l * w_l * k_l, 4]`` tensor per image, with the first map's dtype and device. Grids are
cached per (map sizes, strides, dtype, device), so repeated image sizes cost a copy. The module
compiles with ``torch.jit.script`` (a tensor or a shape list, no cache there); while
``torch.jit.trace`` records it, the grids are computed in the graph from the traced sizes.
"""

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def cell_anchors(
    sizes: list[float],
    aspect_ratios: list[float],
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
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
        grid_sizes: list[tuple[int, int]],
        strides: list[tuple[int, int]],
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> list[Tensor]:
        """Per level, anchors ``[h * w * k, 4]`` for grids ``(h, w)`` with strides ``(sy, sx)``."""
        if not len(grid_sizes) == len(strides) == len(self.cell_anchors):
            raise ValueError(
                f"{len(grid_sizes)} feature maps but anchors configured for "
                f"{len(self.cell_anchors)} levels (one sizes/aspect_ratios entry per level)"
            )
        out: list[Tensor] = []
        for level, base in enumerate(self.cell_anchors):
            grid_h, grid_w = grid_sizes[level]
            stride_h, stride_w = strides[level]
            base = base.to(dtype=dtype, device=device)
            xs = torch.arange(grid_w, dtype=dtype, device=device) * stride_w  # [w]
            ys = torch.arange(grid_h, dtype=dtype, device=device) * stride_h  # [h]
            shift_y, shift_x = torch.meshgrid(ys, xs, indexing="ij")  # [h, w] each
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)  # [h * w, 4]
            out.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))  # [h * w * k, 4]
        return out

    def forward(
        self,
        images: Tensor | list[int],
        feature_maps: list[Tensor] | dict[str, Tensor],
    ) -> list[Tensor]:
        """Anchors of every level, one tensor per image of the batch ``images``.

        Args:
            images: the padded batch ``[N, C, H, W]``, its shape, or (eagerly) torchvision's
                ``ImageList``.
            feature_maps: the per-level maps, finest first: a list, or a dict in level order.
        """
        if torch.jit.is_scripting():
            shape = images.shape if isinstance(images, Tensor) else images
            maps = feature_maps if isinstance(feature_maps, list) else list(feature_maps.values())
        else:
            shape, maps = _eager_inputs(images, feature_maps)
        num_images, image_h, image_w = shape[0], shape[-2], shape[-1]
        grid_sizes = [(f.shape[-2], f.shape[-1]) for f in maps]
        # traced: sizes are 0-dim tensors and the grids are built in the graph, for any size
        tracing = not torch.jit.is_scripting() and torch.jit.is_tracing()
        strides = [(image_h // h, image_w // w) if tracing else
                   (image_h // max(h, 1), image_w // max(w, 1)) for h, w in grid_sizes]
        dtype, device = maps[0].dtype, maps[0].device
        if torch.jit.is_scripting() or tracing:
            anchors = torch.cat(self.grid_anchors(grid_sizes, strides, dtype, device))
        else:
            anchors = self._cached_anchors(grid_sizes, strides, dtype, device)
        return [anchors.clone() for _ in range(num_images)]

    @torch.jit.unused
    def _cached_anchors(
        self,
        grid_sizes: list[tuple[int, int]],
        strides: list[tuple[int, int]],
        dtype: torch.dtype,
        device: torch.device,
    ) -> Tensor:
        """All levels' anchors ``[A, 4]``, from the cache when these grids were seen."""
        key = (tuple(grid_sizes), tuple(strides), dtype, device)
        anchors = self._cache.get(key)
        if anchors is None:
            anchors = torch.cat(self.grid_anchors(grid_sizes, strides, dtype, device))
            self._cache[key] = anchors
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return anchors


@torch.jit.unused
def _eager_inputs(images: Any, feature_maps: Any) -> tuple[list[int], list[Tensor]]:
    """The batch shape ``[N, ..., H, W]`` of a padded batch, its shape or an ``ImageList``
    (``.tensors``), and the maps of a sequence or a mapping."""
    if hasattr(images, "tensors") and hasattr(images, "image_sizes"):
        images = images.tensors
    shape = images.shape if isinstance(images, Tensor) else images
    if isinstance(feature_maps, Mapping):
        feature_maps = feature_maps.values()
    if torch.jit.is_tracing():  # keep the traced sizes
        return list(shape), list(feature_maps)
    return [int(n) for n in shape], list(feature_maps)
