"""The detector's own input transform: normalise, resize, pad into a batch; map boxes back.

Images enter as a list of float ``[3, H, W]`` tensors in 0–1 (any sizes). Each is normalised
with the backbone's mean/std, resized so its short side is ``min_size`` unless that makes the
long side exceed ``max_size`` (bilinear, the same arithmetic as torchvision's
``GeneralizedRCNNTransform``, so results match it), and zero-padded at the bottom/right into one
``[N, 3, H_pad, W_pad]`` tensor whose sides are multiples of ``size_divisible``. Target boxes
are scaled with their image; detections are scaled back to the original sizes by `postprocess`.

While ``torch.jit.trace`` records it (`visionkit export`), every size stays a traced tensor:
the resize scale, the padding and the sizes handed on are computed in the graph, so the traced
detector accepts images of any size, as eager mode does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Target = dict[str, Tensor]
Size = tuple[int, int]  # (height, width); 0-dim int64 tensors while traced


def image_size(image: Tensor) -> Size:
    """``(height, width)`` of a ``[..., H, W]`` tensor: ints, or traced sizes while traced."""
    height, width = image.shape[-2:]
    if torch.jit.is_tracing():  # keep them in the graph: the traced model takes any size
        return height, width
    return int(height), int(width)


def size_tensor(size: Sequence[int | Tensor], device: torch.device | None = None) -> Tensor:
    """A ``(height, width)`` of ints or traced 0-dim tensors as a float32 tensor ``[2]``."""
    if isinstance(size[0], Tensor):
        return torch.stack([torch.as_tensor(s) for s in size]).to(torch.float32).to(device)
    return torch.tensor([float(s) for s in size], dtype=torch.float32, device=device)


def resize_boxes(boxes: Tensor, original_size: Sequence[int], new_size: Sequence[int]) -> Tensor:
    """Scale ``xyxy`` boxes from an image of ``(h, w)`` = ``original_size`` to ``new_size``."""
    ratio_h, ratio_w = (size_tensor(new_size, boxes.device)
                        / size_tensor(original_size, boxes.device)).unbind()
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=1)


def normalize_image(image: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(image - mean) / std`` per channel of a ``[C, H, W]`` image."""
    mean_t = torch.as_tensor(mean, dtype=image.dtype, device=image.device)
    std_t = torch.as_tensor(std, dtype=image.dtype, device=image.device)
    return (image - mean_t[:, None, None]) / std_t[:, None, None]


class DetectionTransform(nn.Module):
    """Normalise, resize (short side ``min_size``, long side at most ``max_size``) and batch.

    ``min_size`` may be a sequence: training then picks one per image at random (multi-scale
    training; drawn from torch's generator as torchvision's transform draws), evaluation uses
    the last. ``fixed_size`` ``(width, height)`` resizes every image to that size instead.
    """

    def __init__(
        self,
        min_size: int | Sequence[int],
        max_size: int,
        image_mean: Sequence[float],
        image_std: Sequence[float],
        size_divisible: int = 32,
        fixed_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.min_size = tuple(min_size) if isinstance(min_size, Sequence) else (int(min_size),)
        self.max_size = int(max_size)
        self.image_mean = [float(m) for m in image_mean]
        self.image_std = [float(s) for s in image_std]
        self.size_divisible = int(size_divisible)
        self.fixed_size = tuple(fixed_size) if fixed_size is not None else None

    def extra_repr(self) -> str:
        return (f"min_size={self.min_size}, max_size={self.max_size}, mean={self.image_mean}, "
                f"std={self.image_std}, size_divisible={self.size_divisible}")

    def forward(
        self, images: Sequence[Tensor], targets: Sequence[Target] | None = None
    ) -> tuple[Tensor, list[Size], list[Target] | None]:
        """(padded batch, per-image ``(h, w)`` after resizing, targets with scaled boxes)."""
        out_images, out_targets = [], [] if targets is not None else None
        for i, image in enumerate(images):
            if image.dim() != 3:
                raise ValueError(f"image {i}: expected a [C, H, W] tensor, got shape "
                                 f"{list(image.shape)}")
            if not image.is_floating_point():
                raise TypeError(f"image {i}: expected floats in [0, 1], got {image.dtype}")
            resized = self.resize(self.normalize(image))
            out_images.append(resized)
            if targets is not None:
                target = dict(targets[i])
                target["boxes"] = resize_boxes(target["boxes"], image.shape[-2:], resized.shape[-2:])
                out_targets.append(target)
        sizes = [image_size(img) for img in out_images]
        return self.batch_images(out_images), sizes, out_targets

    def normalize(self, image: Tensor) -> Tensor:
        """``(image - mean) / std`` per channel."""
        return normalize_image(image, self.image_mean, self.image_std)

    def resize(self, image: Tensor) -> Tensor:
        """Bilinear resize to the target size (random ``min_size`` choice in training)."""
        size = self.min_size[-1]
        if self.training:
            # One uniform draw per training image, one size or several, as torchvision's
            # transform draws: a seeded step then samples what torchvision's samples.
            size = self.min_size[int(torch.empty(1).uniform_(0.0, float(len(self.min_size))).item())]
        if self.fixed_size is not None:
            width, height = self.fixed_size
            return F.interpolate(image[None], size=[height, width], mode="bilinear",
                                 align_corners=False)[0]
        if torch.jit.is_tracing():  # the same float64 arithmetic as below, in the graph
            hw = torch._shape_as_tensor(image)[-2:].to(torch.float64)  # [2]
            limits = torch.tensor([size, self.max_size], dtype=torch.float64)  # float64 in ONNX too
            scale = (limits / torch.stack((hw.min(), hw.max()))).min()
            new_h, new_w = (hw * scale).floor().to(torch.int64).unbind()
            return F.interpolate(image[None], size=(new_h, new_w), mode="bilinear",
                                 align_corners=False)[0]
        height, width = image.shape[-2:]
        scale = min(size / min(height, width), self.max_size / max(height, width))
        return F.interpolate(image[None], scale_factor=scale, mode="bilinear",
                             recompute_scale_factor=True, align_corners=False)[0]

    def batch_images(self, images: Sequence[Tensor]) -> Tensor:
        """Zero-pad images (bottom/right) to a common size divisible by ``size_divisible``."""
        stride = self.size_divisible
        if torch.jit.is_tracing():  # padded size computed in the graph
            shapes = torch.stack([torch._shape_as_tensor(img) for img in images])  # [N, 3]
            largest = shapes.max(0).values  # [3]
            height, width = ((largest[1:].to(torch.float64) / stride).ceil().to(torch.int64)
                             * stride).unbind()
            channels = largest[0]
        else:
            height = int(math.ceil(max(img.shape[-2] for img in images) / stride) * stride)
            width = int(math.ceil(max(img.shape[-1] for img in images) / stride) * stride)
            channels = max(img.shape[0] for img in images)
        # F.pad, not copies into a zero batch: ONNX export drops in-place writes into views.
        return torch.stack([F.pad(img, (0, width - img.shape[2], 0, height - img.shape[1],
                                        0, channels - img.shape[0])) for img in images])

    def postprocess(
        self,
        detections: list[Target],
        image_sizes: Sequence[Size],
        original_sizes: Sequence[Size],
    ) -> list[Target]:
        """Detections with boxes scaled from the resized to the original image sizes."""
        for det, size, original in zip(detections, image_sizes, original_sizes, strict=True):
            det["boxes"] = resize_boxes(det["boxes"], size, original)
        return detections
