"""Classification metrics from a confusion matrix (rows = true class, columns = predicted)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from visionkit.fileio import atomic_write_with


class ConfusionMatrix:
    """Accumulates a `[C, C]` confusion matrix and top-k hit counts over batches."""

    def __init__(self, num_classes: int, topk: Sequence[int] = (1, 5)) -> None:
        self.num_classes = num_classes
        self.topk = tuple(k for k in topk if k <= num_classes)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        self.topk_hits = torch.zeros(len(self.topk), dtype=torch.long)

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch of logits `[B, C]` and integer labels `[B]`."""
        logits, labels = logits.detach().cpu(), labels.detach().cpu()
        pred = logits.argmax(1)
        self.matrix += torch.bincount(labels * self.num_classes + pred,
                                      minlength=self.num_classes ** 2).view_as(self.matrix)
        if self.topk:
            top = logits.topk(max(self.topk), dim=1).indices
            hits = top == labels[:, None]
            self.topk_hits += torch.stack([hits[:, :k].any(1).sum() for k in self.topk])

    def state_tensor(self) -> torch.Tensor:
        """Everything accumulated, flattened into one tensor (for a distributed sum)."""
        return torch.cat([self.matrix.flatten(), self.topk_hits])

    def load_state_tensor(self, state: torch.Tensor) -> None:
        """Replace the accumulated counts with `state` (e.g. summed over processes)."""
        n = self.num_classes ** 2
        state = state.to("cpu", torch.long)
        self.matrix = state[:n].view(self.num_classes, self.num_classes).clone()
        self.topk_hits = state[n:].clone()

    def compute(self) -> dict[str, float | list[float]]:
        """`acc` (top-1), `top{k}` for each k, `per_class_acc` (NaN for classes never seen)."""
        total = int(self.matrix.sum())
        out: dict[str, float | list[float]] = {}
        if total == 0:
            return out
        out["acc"] = float(self.matrix.diag().sum()) / total
        for k, hits in zip(self.topk, self.topk_hits.tolist()):
            if k != 1:
                out[f"top{k}"] = hits / total
        rows = self.matrix.sum(1).double()
        out["per_class_acc"] = (self.matrix.diag().double() / rows).tolist()
        return out


def plot_confusion_matrix(matrix: np.ndarray | torch.Tensor, class_names: Sequence[str],
                          path: str | os.PathLike, title: str = "Confusion matrix") -> Path:
    """Write a confusion-matrix heat map (counts, row-normalised colours) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, dtype=np.int64)
    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros(m.shape, dtype=float), where=rows > 0)
    n = len(class_names)
    side = min(max(4.5, 2.5 + 0.45 * n), 24)
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {np.trace(m) / max(m.sum(), 1):.3f}")  # fits narrow plots
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(m[i, j]), ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    fig.tight_layout()
    try:
        return atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)
