"""Classification heads on pooled backbone features."""

from __future__ import annotations

import torch
from torch import nn

from visionkit.errors import ConfigError

HEADS = ("linear", "mlp")


class ClassifierHead(nn.Module):
    """`linear`: dropout → fc. `mlp`: hidden Linear → ReLU → dropout → fc."""

    def __init__(self, in_features: int, num_classes: int, head: str = "linear",
                 dropout: float = 0.0, hidden_features: int = 512) -> None:
        super().__init__()
        if head not in HEADS:
            raise ConfigError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
        layers: list[nn.Module] = []
        if head == "mlp":
            layers += [nn.Linear(in_features, hidden_features), nn.ReLU(inplace=True)]
            in_features = hidden_features
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.hidden = nn.Sequential(*layers)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits `[B, num_classes]`."""
        return self.fc(self.hidden(features))
