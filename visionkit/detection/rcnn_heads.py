"""R-CNN's second stage: the CNN frozen, region features cached once, the heads trained on them.

`cache_region_features` checks targets and proposals and samples regions per batch as R-CNN
training does (crowd boxes left out, the first ``max_proposals_train`` proposals, IoU >= 0.5 positives,
the rest background, ``region_batch_size`` with ``positive_fraction``) and keeps the CNN features
with their labels and regression targets in memory; `train_heads_on_features` then fits the
classifier and the class-specific box regressor (`fastrcnn_loss`) over shuffled mini-batches of
those features: each epoch costs two small matrix products per region instead of a CNN pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from visionkit.detection.proposals import image_proposals
from visionkit.detection.rcnn import RCNN
from visionkit.detection.targets import training_targets
from visionkit.ops import fastrcnn_loss

Batch = tuple[Sequence[Tensor], Sequence[dict[str, Tensor]], Sequence[Tensor]]


@dataclass
class RegionFeatures:
    """Cached CNN features ``[R, D]`` of sampled regions, labels ``[R]`` and box deltas ``[R, 4]``."""

    features: Tensor
    labels: Tensor
    regression_targets: Tensor


@torch.no_grad()
def cache_region_features(model: RCNN, batches: Iterable[Batch]) -> RegionFeatures:
    """Features of the regions sampled from each ``(images, targets, proposals)`` batch (CNN in eval mode)."""
    was_training = model.training
    model.eval()
    features, labels, targets = [], [], []
    try:
        for images, image_targets, proposals in batches:
            checked = training_targets(image_targets, "RCNN")  # crowd boxes out
            given = image_proposals(images, proposals, None, model.max_proposals[0])
            boxes, batch_labels, deltas = model.sample_regions(given, checked)
            features.append(model.region_features(images, boxes))
            labels.append(batch_labels)
            targets.append(deltas)
    finally:
        model.train(was_training)
    if not features:
        raise ValueError("no batches to cache region features from")
    return RegionFeatures(torch.cat(features), torch.cat(labels), torch.cat(targets))


def train_heads_on_features(model: RCNN, cached: RegionFeatures, *, epochs: int = 10, lr: float = 1e-3,
                            weight_decay: float = 1e-4, batch_size: int = 128,
                            generator: torch.Generator | None = None) -> list[float]:
    """Fit ``model.box_predictor`` on ``cached`` with AdamW; mean loss per epoch."""
    predictor = model.box_predictor.train()
    optimizer = torch.optim.AdamW(predictor.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(cached.labels), generator=generator)
        total = 0.0
        for index in order.split(batch_size):
            logits, deltas = predictor(cached.features[index])
            loss_classifier, loss_box = fastrcnn_loss(logits, deltas, [cached.labels[index]],
                                                      [cached.regression_targets[index]])
            loss = loss_classifier + loss_box
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(index)
        history.append(total / len(order))
    return history
