"""RegionProposalNetwork: its loss against torchvision's, target assignment and proposal filtering."""

from __future__ import annotations

import pytest
import torch
import torchvision.models.detection as tv_detection

from visionkit.detection.rpn import RegionProposalNetwork, RPNHead
from visionkit.ops import AnchorGenerator

from ..ops._helpers import assert_close


def _rpn(**options) -> RegionProposalNetwork:
    return RegionProposalNetwork(AnchorGenerator(), RPNHead(8, 3), **options)


def test_loss_on_nothing_sampled_is_zero_with_gradient():
    objectness = torch.randn(10, requires_grad=True)
    rpn_deltas = torch.randn(10, 4, requires_grad=True)
    ignored = [torch.full((10,), -1.0)]
    obj_loss, box_loss = _rpn().compute_loss(objectness, rpn_deltas, ignored, [torch.zeros(10, 4)])
    assert obj_loss.item() == 0.0 and box_loss.item() == 0.0
    (obj_loss + box_loss).backward()


def _rpn_batch(counts, seed, device):
    g = torch.Generator().manual_seed(seed)
    total = sum(counts)
    objectness = torch.randn(total, 1, generator=g).to(device).requires_grad_()
    deltas = torch.randn(total, 4, generator=g).to(device).requires_grad_()
    # RPN labels as torchvision makes them: 1.0 object, 0.0 background, -1.0 ignored.
    labels = [
        (torch.randint(-1, 2, (n,), generator=g) * (torch.rand(n, generator=g) < 0.3)).float()
        .to(device)
        for n in counts
    ]
    for lab in labels:
        lab[: len(lab) // 50] = 1.0
    targets = [torch.randn(n, 4, generator=g).to(device) for n in counts]
    return objectness, deltas, labels, targets


@pytest.mark.parametrize("counts", [[2000], [3000, 500], [40]])
@pytest.mark.parametrize("batch,fraction", [(256, 0.5), (64, 0.25)])
def test_rpn_loss_matches_torchvision(device, counts, batch, fraction):
    objectness, deltas, labels, targets = _rpn_batch(counts, sum(counts), device)
    tv_rpn = tv_detection.rpn.RegionProposalNetwork(
        AnchorGenerator(), tv_detection.rpn.RPNHead(8, 3), 0.7, 0.3, batch, fraction, {}, {}, 0.7
    )
    torch.manual_seed(5)
    theirs = tv_rpn.compute_loss(objectness, deltas, labels, targets)
    rpn = _rpn(batch_size_per_image=batch, positive_fraction=fraction)
    torch.manual_seed(5)
    ours = rpn.compute_loss(objectness, deltas, labels, targets)
    for o, t in zip(ours, theirs, strict=True):
        assert_close(o, t)
    grads_ours = torch.autograd.grad(sum(ours), (objectness, deltas))
    grads_theirs = torch.autograd.grad(sum(theirs), (objectness, deltas))
    for o, t in zip(grads_ours, grads_theirs, strict=True):
        assert_close(o, t)
