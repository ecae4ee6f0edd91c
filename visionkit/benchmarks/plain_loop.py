"""The reference every classification recipe is held to: a plain PyTorch loop, no Lightning.

Same model (`create_classifier`), same datasets and transforms (the data module's), same seed;
the textbook loop around them: AdamW over the trainable parameters, one-cycle LR stepped per
batch, cross-entropy with label smoothing, an evaluation pass after each epoch. For a linear
probe the backbone is frozen and kept in eval mode (its BatchNorm statistics stay ImageNet's).
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from visionkit.data.image_folder import collate_classification
from visionkit.models import create_classifier
from visionkit.models.classifier import BACKBONES


def plain_loop(root: str, *, backbone: str, pretrained: str | None, linear_probe: bool, epochs: int,
               lr: float, weight_decay: float = 0.01, label_smoothing: float = 0.1,
               dropout: float = 0.0, seed: int = 0, data: dict[str, Any] | None = None) -> dict:
    """Train and evaluate with a plain loop; return ``{"best", "final", "val_acc", "seconds"}``."""
    from visionkit.tasks.fitting import seed_all
    from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule

    seed_all(seed)  # Python, NumPy and torch, as fit_classifier seeds them
    spec = BACKBONES[backbone]
    dm = ImageFolderDataModule(root, mean=spec.mean, std=spec.std, **dict(data or {}))
    dm.setup("fit")
    model = create_classifier(backbone, dm.num_classes, pretrained=pretrained, dropout=dropout)
    if linear_probe:
        model.backbone.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(dm.train_set, batch_size=dm.batch_size, shuffle=True, generator=generator,
                       num_workers=dm.num_workers, collate_fn=collate_classification)
    val = DataLoader(dm.val_set, batch_size=dm.batch_size, num_workers=dm.num_workers,
                     collate_fn=collate_classification)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr,
                                                   total_steps=epochs * len(train))
    curve: list[float] = []
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        if linear_probe:
            model.backbone.eval()
        for batch in train:
            loss = F.cross_entropy(model(batch["image"]), batch["label"],
                                   label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for batch in val:
                correct += int((model(batch["image"]).argmax(1) == batch["label"]).sum())
                total += len(batch["label"])
        curve.append(correct / total)
    return {"best": round(max(curve), 4), "final": round(curve[-1], 4),
            "val_acc": [round(v, 4) for v in curve], "seconds": round(time.perf_counter() - started, 1)}
