"""Selective search (Uijlings et al. 2013): class-agnostic object proposals by hierarchical grouping.

Each strategy over-segments the image (Felzenszwalb–Huttenlocher graph segmentation, scikit-image)
in one colour space at one scale ``k``, then greedily merges the most similar pair of adjacent
regions until one region is left; every region ever formed is a proposal. Similarity is a sum of
colour (25-bin histograms per channel), texture (Gaussian-derivative magnitudes in 8 orientations,
10 bins per channel), size (small regions merge first) and fill (regions that fit each other's
box) terms, all in [0, 1]. Proposals of all strategies are ranked as in the paper (position in
the hierarchy, whole image first, times a seeded random number), duplicates removed.

Modes, each a list of strategies (colour space, ``k``, similarity terms):

- "recall" (the default): HSV k=25 CSF, RGB k=25 F, H k=25 F, HSV k=25 F, Lab k=100 CTSF,
  HSV k=100 CTSF. The first four were chosen greedily for recall at IoU 0.5 (as the paper chose
  its modes) among 8 colour spaces × k ∈ {25, 50, 100} × 5 term sets on BCCD and raccoon
  training photos; the last two (from "fast") bring back its localisation on large objects.
  Fine segments merged by size and fill rather than colour separate touching objects of one
  colour (blood cells), which "fast" merges: BCCD val recall 0.912 → 0.985 on 20 photos at
  about the same time.
- "fast" (the paper's): HSV and Lab × k ∈ {50, 100} × {CTSF, TSF} (8 strategies).
- "quality" (the paper's): HSV, Lab, rgI, H, I × k ∈ {50, 100, 150, 300} × {CTSF, TSF, F, S} (80).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from scipy import ndimage

COLOUR_BINS = 25
TEXTURE_BINS = 10
ORIENTATIONS = 8  # positive and negative derivative along 0, 45, 90 and 135 degrees

Strategy = tuple[str, int, str]  # (colour space, Felzenszwalb k, similarity terms)


def _product(spaces: tuple[str, ...], scales: tuple[int, ...], terms: tuple[str, ...]
             ) -> tuple[Strategy, ...]:
    return tuple((space, k, t) for space in spaces for k in scales for t in terms)


MODES: dict[str, tuple[Strategy, ...]] = {
    "recall": (("hsv", 25, "CSF"), ("rgb", 25, "F"), ("h", 25, "F"), ("hsv", 25, "F"),
               ("lab", 100, "CTSF"), ("hsv", 100, "CTSF")),
    "fast": _product(("hsv", "lab"), (50, 100), ("CTSF", "TSF")),
    "quality": _product(("hsv", "lab", "rgi", "h", "i"), (50, 100, 150, 300),
                        ("CTSF", "TSF", "F", "S")),
}
DEFAULT_MODE = "recall"


@dataclass
class _Regions:
    """Per-region features of one segmentation; merged regions are appended as they form."""

    colour: np.ndarray  # [R, C * COLOUR_BINS], rows sum to 1
    texture: np.ndarray  # [R, C * ORIENTATIONS * TEXTURE_BINS], rows sum to 1 ([R, 0]: unused)
    size: np.ndarray  # [R] pixels
    box: np.ndarray  # [R, 4] xyxy, end exclusive
    pairs: np.ndarray  # [P, 2] adjacent region indices, i < j


class SelectiveSearch:
    """Callable proposal generator: RGB uint8 HWC image → float32 ``[N, 4]`` xyxy, best first.

    Args:
        mode: "recall", "fast" or "quality" (see the module docstring).
        max_proposals: at most this many boxes are returned.
        max_side: images with a longer side are searched at this side (boxes mapped back);
            ``None`` searches at full size.
        sigma: Gaussian smoothing before segmentation.
        seed: seeds the ranking; the same image and settings give the same boxes.
    """

    def __init__(self, mode: Literal["recall", "fast", "quality"] = DEFAULT_MODE, max_proposals: int = 2000,
                 max_side: int | None = 500, sigma: float = 0.8, seed: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        if max_proposals < 1:
            raise ValueError(f"max_proposals must be >= 1, got {max_proposals}")
        self.mode = mode
        self.max_proposals = max_proposals
        self.max_side = max_side
        self.sigma = sigma
        self.seed = seed

    @property
    def settings(self) -> dict[str, object]:
        """The constructor arguments: everything that changes the output (cache keys, checkpoints)."""
        return {"mode": self.mode, "max_proposals": self.max_proposals,
                "max_side": self.max_side, "sigma": self.sigma, "seed": self.seed}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Up to ``max_proposals`` boxes in ``image``'s pixels, ranked best first."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"selective search takes an RGB uint8 HWC image, got {image.dtype} "
                             f"{list(image.shape)}")
        height, width = image.shape[:2]
        scale = 1.0
        if self.max_side and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        boxes, ranks = [], []
        converted: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        segmented: dict[tuple[str, int], _Regions] = {}
        for strategy, (space, k, terms) in enumerate(MODES[self.mode]):
            if space not in converted:  # textures only where a strategy of this space uses T
                image_in_space = colour_space(image, space)
                uses_texture = any(s == space and "T" in t for s, _, t in MODES[self.mode])
                converted[space] = (image_in_space,
                                    texture_bins(image_in_space) if uses_texture else None)
            if (space, k) not in segmented:
                segmented[space, k] = segment_regions(*converted[space], k, self.sigma)
            hierarchy = group_hierarchically(segmented[space, k], terms,
                                             image.shape[0] * image.shape[1])
            rng = np.random.default_rng((self.seed, strategy))
            position = np.arange(len(hierarchy), 0, -1, dtype=np.float64)  # whole image: 1
            boxes.append(hierarchy)
            ranks.append(position * rng.random(len(hierarchy)))
        all_boxes = np.concatenate(boxes)[np.argsort(np.concatenate(ranks), kind="stable")]
        corners = all_boxes.astype(np.int64)  # whole pixels at the search size
        side = max(image.shape[:2]) + 1
        _, first = np.unique(((corners[:, 0] * side + corners[:, 1]) * side + corners[:, 2]) * side
                             + corners[:, 3], return_index=True)
        ranked = all_boxes[np.sort(first)][: self.max_proposals].astype(np.float32)
        ranked /= np.float32(scale)
        np.clip(ranked[:, 0::2], 0, width, out=ranked[:, 0::2])
        np.clip(ranked[:, 1::2], 0, height, out=ranked[:, 1::2])
        return ranked


def colour_space(image: np.ndarray, space: str) -> np.ndarray:
    """``image`` (RGB uint8) in colour space ``space`` as uint8 ``[H, W, C]`` (C = 3 or 1)."""
    if space == "hsv":
        return cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
    if space == "lab":
        return cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    if space == "rgb":
        return image
    rgb = image.astype(np.float32)
    total = rgb.sum(-1, keepdims=True)
    intensity = total / 3
    if space == "rgi":
        normalised = rgb[..., :2] / np.maximum(total, 1) * 255
        return np.concatenate([normalised, intensity], -1).round().astype(np.uint8)
    if space == "h":
        return cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)[..., :1]
    if space == "i":
        return intensity.round().astype(np.uint8)
    raise ValueError(f"unknown colour space {space!r}")


def texture_bins(image: np.ndarray) -> np.ndarray:
    """Per pixel, channel and axis: the bin ``orientation * TEXTURE_BINS + magnitude bin``.

    Gaussian derivatives (sigma 1) along 0/45/90/135 degrees; the sign picks one of the two
    opposite orientations, the magnitude (relative to the channel's largest) one of 10 bins.
    Shape ``[H, W, C, 4]``, int64.
    """
    height, width, channels = image.shape
    out = np.empty((height, width, channels, 4), np.int64)
    for c in range(channels):
        smooth = cv2.GaussianBlur(image[..., c].astype(np.float32), (0, 0), 1.0)
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
        for axis, angle in enumerate(np.deg2rad([0, 45, 90, 135])):
            derivative = gx * np.cos(angle) + gy * np.sin(angle)
            magnitude = np.abs(derivative)
            top = float(magnitude.max()) or 1.0
            bins = np.minimum((magnitude * (TEXTURE_BINS / top)).astype(np.int64), TEXTURE_BINS - 1)
            orientation = 2 * axis + (derivative < 0)
            out[..., c, axis] = orientation * TEXTURE_BINS + bins
    return out


def _histograms(labels: np.ndarray, bins: np.ndarray, regions: int, per_channel: int) -> np.ndarray:
    """L1-normalised histograms ``[regions, C * per_channel]`` of per-pixel ``bins [H, W, C, ...]``."""
    channels = bins.shape[2]
    offsets = (np.arange(channels) * per_channel).reshape(1, 1, channels, *([1] * (bins.ndim - 3)))
    index = labels.reshape(*labels.shape, 1, *([1] * (bins.ndim - 3))) * (channels * per_channel)
    counts = np.bincount((index + offsets + bins).ravel(), minlength=regions * channels * per_channel)
    hist = counts.reshape(regions, channels * per_channel).astype(np.float64)
    return hist / hist.sum(1, keepdims=True)


def segment_regions(image: np.ndarray, texture: np.ndarray | None, k: int, sigma: float) -> _Regions:
    """Felzenszwalb segmentation of ``image`` at scale ``k`` and each region's features
    (``texture`` None: no texture histograms, for strategies without the T term)."""
    from skimage.segmentation import felzenszwalb

    labels = felzenszwalb(image, scale=k, sigma=sigma, min_size=k, channel_axis=-1).astype(np.int64)
    count = int(labels.max()) + 1
    colour = _histograms(labels, (image.astype(np.int64) * COLOUR_BINS) >> 8, count, COLOUR_BINS)
    textures = (np.zeros((count, 0)) if texture is None
                else _histograms(labels, texture, count, ORIENTATIONS * TEXTURE_BINS))
    size = np.bincount(labels.ravel(), minlength=count).astype(np.float64)
    box = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop]
                    for s in ndimage.find_objects(labels + 1)], np.float64)
    horizontal = np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1)
    vertical = np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1)
    pairs = np.concatenate([horizontal, vertical])
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], 1)
    keys = np.unique(pairs[:, 0] * count + pairs[:, 1])
    pairs = np.stack([keys // count, keys % count], 1)
    return _Regions(colour, textures, size, box, pairs)


def _similarity(regions: _Regions, i: int | np.ndarray, j: np.ndarray, terms: str,
                image_size: float) -> np.ndarray:
    """Similarity of region(s) ``i`` to regions ``j`` with the terms named in ``terms`` (CTSF)."""
    total = np.zeros(len(j))
    size_i, size_j = regions.size[i], regions.size[j]
    if "C" in terms:
        total += np.minimum(regions.colour[i], regions.colour[j]).sum(-1)
    if "T" in terms:
        total += np.minimum(regions.texture[i], regions.texture[j]).sum(-1)
    if "S" in terms:
        total += 1 - (size_i + size_j) / image_size
    if "F" in terms:
        bi, bj = regions.box[i], regions.box[j]
        union = (np.maximum(bi[..., 2], bj[:, 2]) - np.minimum(bi[..., 0], bj[:, 0])) * (
            np.maximum(bi[..., 3], bj[:, 3]) - np.minimum(bi[..., 1], bj[:, 1]))
        total += 1 - (union - size_i - size_j) / image_size
    return total


def group_hierarchically(segmentation: _Regions, terms: str, image_size: int) -> np.ndarray:
    """Boxes ``[2R - 1, 4]`` of the initial regions, then of each merge in the order they form."""
    count = len(segmentation.size)
    grown = 2 * count - 1
    regions = _Regions(
        colour=_grow(segmentation.colour, grown), texture=_grow(segmentation.texture, grown),
        size=_grow(segmentation.size, grown), box=_grow(segmentation.box, grown),
        pairs=segmentation.pairs)
    neighbours: list[set[int]] = [set() for _ in range(grown)]
    for i, j in regions.pairs.tolist():
        neighbours[i].add(j)
        neighbours[j].add(i)
    pairs = regions.pairs
    sims = _similarity(regions, pairs[:, 0], pairs[:, 1], terms, image_size) if len(pairs) else []
    heap = [(-float(s), int(i), int(j)) for s, (i, j) in zip(sims, pairs.tolist(), strict=True)]
    heapq.heapify(heap)
    alive = np.zeros(grown, bool)
    alive[:count] = True
    new = count
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        _merge(regions, i, j, new)
        alive[i] = alive[j] = False
        alive[new] = True
        around = (neighbours[i] | neighbours[j]) - {i, j}
        for n in around:
            neighbours[n] -= {i, j}
            neighbours[n].add(new)
        neighbours[new] = around
        if around:
            others = np.fromiter(around, np.int64, len(around))
            for s, n in zip(_similarity(regions, new, others, terms, image_size).tolist(),
                            others.tolist(), strict=True):
                heapq.heappush(heap, (-s, n, new))
        new += 1
    return regions.box[:new]


def _grow(values: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, *values.shape[1:]), values.dtype)
    out[: len(values)] = values
    return out


def _merge(regions: _Regions, i: int, j: int, into: int) -> None:
    """Write the union of regions ``i`` and ``j`` into row ``into``."""
    si, sj = regions.size[i], regions.size[j]
    regions.size[into] = si + sj
    for hist in (regions.colour, regions.texture):
        hist[into] = (si * hist[i] + sj * hist[j]) / (si + sj)
    bi, bj = regions.box[i], regions.box[j]
    regions.box[into] = (min(bi[0], bj[0]), min(bi[1], bj[1]), max(bi[2], bj[2]), max(bi[3], bj[3]))

