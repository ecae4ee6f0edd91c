"""visionkit.ops losses against torch / torchvision: smooth L1 and the Fast R-CNN loss (the RPN's:
tests/detection/test_rpn.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import fastrcnn_loss as tv_fastrcnn_loss

from visionkit.ops import (
    fastrcnn_loss,
    smooth_l1_loss,
)

from ._helpers import assert_close, assert_same_losses


@pytest.mark.parametrize("beta", [1.0, 1 / 9, 0.0, 3.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(0, 4), (1,), (37, 4), (5, 3, 7)])
def test_smooth_l1_matches_torch(device, beta, reduction, shape):
    g = torch.Generator().manual_seed(len(shape))
    x = (torch.randn(shape, generator=g) * 2).to(device).requires_grad_()
    y = (torch.randn(shape, generator=g) * 2).to(device)
    ours = smooth_l1_loss(x, y, beta=beta, reduction=reduction)
    theirs = F.smooth_l1_loss(x, y, beta=beta, reduction=reduction)
    assert_close(ours, theirs)
    if x.numel() and reduction != "none":
        (g_ours,) = torch.autograd.grad(ours, x)
        (g_theirs,) = torch.autograd.grad(theirs, x)
        assert_close(g_ours, g_theirs)
    with pytest.raises(ValueError, match="reduction"):
        smooth_l1_loss(x, y, reduction="avg")


def _roi_batch(counts, num_classes, seed, device, agnostic=False):
    g = torch.Generator().manual_seed(seed)
    total = sum(counts)
    logits = torch.randn(total, num_classes, generator=g).to(device).requires_grad_()
    width = 4 if agnostic else 4 * num_classes
    deltas = torch.randn(total, width, generator=g).to(device).requires_grad_()
    labels = [torch.randint(0, num_classes, (n,), generator=g).to(device) for n in counts]
    targets = [torch.randn(n, 4, generator=g).to(device) for n in counts]
    return logits, deltas, labels, targets


@pytest.mark.parametrize("counts", [[512], [128, 64, 1], [5, 0]])
@pytest.mark.parametrize("num_classes", [2, 91])
def test_fastrcnn_loss_matches_torchvision(device, counts, num_classes):
    logits, deltas, labels, targets = _roi_batch(counts, num_classes, sum(counts), device)
    ours = fastrcnn_loss(logits, deltas, labels, targets)
    theirs = tv_fastrcnn_loss(logits, deltas, labels, targets)
    assert_same_losses(ours, theirs, (logits, deltas))


def test_fastrcnn_loss_normalisation_and_agnostic_boxes():
    logits, deltas, labels, targets = _roi_batch([64], 5, seed=3, device="cpu", agnostic=True)
    _, box_loss = fastrcnn_loss(logits, deltas, labels, targets)
    pos = labels[0] > 0
    expected = F.smooth_l1_loss(deltas[pos], targets[0][pos], beta=1 / 9, reduction="sum") / 64
    assert_close(box_loss, expected)
    # Only positives are regressed: changing background deltas changes nothing.
    changed = deltas.detach().clone()
    changed[~pos] += 100
    assert_close(fastrcnn_loss(logits, changed, labels, targets)[1], box_loss.detach())


def test_losses_on_nothing_sampled_are_zero_with_gradient():
    logits, deltas, labels, targets = _roi_batch([0], 3, seed=0, device="cpu")
    cls_loss, box_loss = fastrcnn_loss(logits, deltas, labels, targets)
    assert cls_loss.item() == 0.0 and box_loss.item() == 0.0
    (cls_loss + box_loss).backward()
    assert logits.grad is not None
