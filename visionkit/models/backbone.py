"""Uniform backbone interface over classification architectures.

A `Backbone` wraps a classification network (`.net`: a torchvision model, or another network
built by the spec's `build`) whose final Linear layer was replaced by `nn.Identity`, so `net`'s
parameter names are those of its weights files (torchvision's, for torchvision architectures)
and its ImageNet weights load unchanged. `forward` returns pooled features `[B, out_features]`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torchvision
from torch import nn

from visionkit.errors import ConfigError, WeightsError
from visionkit.models.weights import state_dict_mismatch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one classification architecture as a visionkit backbone."""

    family: str
    final_layer: str  # dotted path of the final Linear in the network
    layer_groups: Callable[[nn.Module], list[list[nn.Module]]]  # shallow -> deep
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    tv_kwargs: dict = field(default_factory=dict)
    aux_prefixes: tuple[str, ...] = ()  # state-dict keys of auxiliary heads (dropped when off)
    # The network, when not a torchvision architecture (default: torchvision's `get_model(name)`).
    build: Callable[[], nn.Module] | None = None
    # (state dict, source) of its ImageNet weights (default: torchvision's DEFAULT weights file).
    imagenet_weights: Callable[[], tuple[dict[str, torch.Tensor], str]] | None = None


class Backbone(nn.Module):
    """A classification network minus its final Linear, with layer groups and input metadata.

    Args:
        name: the architecture's name (a key of the specs it came from).
        spec: how to build it (`BackboneSpec`).
    """

    def __init__(self, name: str, spec: BackboneSpec) -> None:
        super().__init__()
        self.name = name
        self.spec = spec
        self.net = spec.build() if spec.build is not None else torchvision.models.get_model(
            name, weights=None, **spec.tv_kwargs)
        final = self.net.get_submodule(spec.final_layer)
        self.out_features: int = final.in_features
        self.final_layer_shape = tuple(final.weight.shape)
        _set_submodule(self.net, spec.final_layer, nn.Identity())

    @property
    def input_size(self) -> int:
        """Square input side length the architecture was designed for."""
        return self.spec.input_size

    @property
    def mean(self) -> tuple[float, float, float]:
        """Per-channel mean of the input normalisation (0-1 RGB)."""
        return self.spec.mean

    @property
    def std(self) -> tuple[float, float, float]:
        """Per-channel std of the input normalisation (0-1 RGB)."""
        return self.spec.std

    def layer_groups(self) -> list[list[nn.Module]]:
        """Parameter-holding blocks ordered shallow → deep, for freezing and per-group LRs."""
        return self.spec.layer_groups(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features `[B, out_features]` of normalised images `[B, 3, H, W]`."""
        return self.net(x)

    def load_torchvision_state_dict(
        self, state_dict: dict[str, torch.Tensor], source: str
    ) -> dict[str, torch.Tensor]:
        """Load a state dict in `net`'s layout (torchvision's for its architectures); return its
        final-layer tensors (`weight`, `bias`)."""
        prefix = self.spec.final_layer + "."
        final = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        body = {k: v for k, v in state_dict.items()
                if not k.startswith((prefix, *self.spec.aux_prefixes))}
        problem = state_dict_mismatch(self.net.state_dict(), body)
        if problem:
            raise WeightsError(f"{source}: weights do not fit backbone {self.name!r}: {problem}; "
                               f"pass weights of a {self.name}, or build the backbone they are of")
        self.net.load_state_dict(body, strict=True)
        return final


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, leaf = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, leaf, module)


def build_backbone(name: str, specs: dict[str, BackboneSpec]) -> Backbone:
    """Build the named backbone from `specs`, or fail naming the known names."""
    if name not in specs:
        raise ConfigError(f"unknown backbone {name!r}; known: {', '.join(sorted(specs))}")
    return Backbone(name, specs[name])
