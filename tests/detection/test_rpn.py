"""RegionProposalNetwork: its loss against torchvision's, target assignment and proposal filtering."""

from __future__ import annotations

import pytest
import torch
import torchvision.models.detection as tv_detection

from visionkit.detection.rpn import RegionProposalNetwork, RPNHead
from visionkit.ops import AnchorGenerator

from ..ops._helpers import assert_close, assert_same_losses


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
    assert_same_losses(ours, theirs, (objectness, deltas))


# Hand-computed cases (detectron2 test_matcher.py style): a few boxes, expected tensors written out.
# IoUs below are intersection / union of xyxy boxes, worked out in the comments.

GT_SQUARE = torch.tensor([[0.0, 0.0, 10.0, 10.0]])  # area 100


def test_assign_targets_positive_ignored_and_background_by_iou():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]])  # areas 100 and 400
    anchors = torch.tensor([
        [0.0, 0.0, 10.0, 9.0],  # IoU with gt 0 = 90/100 = 0.9 >= 0.7 -> label 1, matched gt 0
        [20.0, 20.0, 40.0, 36.0],  # IoU with gt 1 = 320/400 = 0.8 >= 0.7 -> label 1, matched gt 1
        [0.0, 0.0, 10.0, 5.0],  # IoU with gt 0 = 50/100 = 0.5 in [0.3, 0.7) -> ignored, -1
        [0.0, 0.0, 10.0, 2.0],  # IoU with gt 0 = 20/100 = 0.2 < 0.3 -> background, 0
        [50.0, 50.0, 60.0, 60.0],  # overlaps nothing -> background, 0
    ])
    labels, matched = _rpn().assign_targets([anchors], [gt])
    assert torch.equal(labels[0], torch.tensor([1.0, 1.0, -1.0, 0.0, 0.0]))
    # Each gt's best anchor (0.9 and 0.8) is already positive, so the low-quality rule adds none.
    assert torch.equal(matched[0][:2], gt)


def test_assign_targets_low_quality_match_keeps_each_gts_best_anchor():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 110.0, 110.0]])
    anchors = torch.tensor([
        [0.0, 0.0, 10.0, 6.0],  # IoU gt 0 = 0.6 < 0.7, but tied best for gt 0 -> 1
        [0.0, 4.0, 10.0, 10.0],  # IoU gt 0 = 60/100 = 0.6, the other half of the tie -> 1
        [0.0, 0.0, 10.0, 5.0],  # IoU gt 0 = 0.5, not gt 0's best -> ignored, -1
        [100.0, 100.0, 110.0, 102.0],  # IoU gt 1 = 20/100 = 0.2 < 0.3, yet gt 1's best -> 1
        [0.0, 0.0, 10.0, 1.0],  # IoU gt 0 = 0.1 -> background, 0
    ])
    labels, matched = _rpn().assign_targets([anchors], [gt])
    assert torch.equal(labels[0], torch.tensor([1.0, 1.0, -1.0, 1.0, 0.0]))
    assert torch.equal(matched[0][[0, 1, 3]], gt[[0, 0, 1]])


def test_assign_targets_image_without_gt_is_all_background():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 9.0], [0.0, 0.0, 10.0, 5.0], [30.0, 30.0, 40.0, 40.0]])
    # Image 0 has the 10x10 box (labels 1, -1, 0 by IoU 0.9, 0.5, 0); image 1 has none.
    labels, matched = _rpn().assign_targets([anchors, anchors.clone()], [GT_SQUARE, torch.zeros(0, 4)])
    assert torch.equal(labels[0], torch.tensor([1.0, -1.0, 0.0]))
    assert torch.equal(labels[1], torch.zeros(3))
    assert torch.equal(matched[1], torch.zeros(3, 4))


def test_compute_loss_by_hand_over_every_sampled_anchor():
    # Labels 1, 0, -1 with batch_size_per_image 256: the sampler takes anchors 0 and 1, skips 2.
    objectness = torch.tensor([2.0, -1.0, 5.0])
    deltas = torch.tensor([[0.0, 0.05, 1.0, -0.5], [3.0, 3.0, 3.0, 3.0], [9.0, 9.0, 9.0, 9.0]])
    labels = [torch.tensor([1.0, 0.0, -1.0])]
    targets = [torch.zeros(3, 4)]
    obj_loss, box_loss = _rpn().compute_loss(objectness, deltas, labels, targets)
    # BCE mean over the 2 sampled: (log(1 + e^-2) [label 1, logit 2] + log(1 + e^-1) [label 0,
    # logit -1]) / 2 = (0.126928 + 0.313262) / 2 = 0.220095.
    torch.testing.assert_close(obj_loss, torch.tensor(0.220095), atol=1e-6, rtol=0)
    # Smooth L1 (beta 1/9) of anchor 0 only (the only positive): |0.05| < beta -> 0.5 * 0.05^2 * 9
    # = 0.01125; |1.0| -> 1 - 1/18 = 0.944444; |-0.5| -> 0.5 - 1/18 = 0.444444; summed 1.400139,
    # divided by the 2 sampled anchors (not by the 1 positive) -> 0.700069.
    torch.testing.assert_close(box_loss, torch.tensor(0.700069), atol=1e-6, rtol=0)


def test_compute_loss_respects_batch_size_and_positive_fraction():
    # batch 2, fraction 0.5: one of the 2 positives and one of the 3 negatives. Positives share
    # logit/deltas and negatives share theirs, so whichever are drawn the losses are the same.
    rpn = _rpn(batch_size_per_image=2, positive_fraction=0.5)
    objectness = torch.tensor([1.0, 1.0, -2.0, -2.0, -2.0])
    deltas = torch.tensor([[0.5, 0.0, 0.0, 0.0]] * 2 + [[4.0, 4.0, 4.0, 4.0]] * 3)
    labels = [torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0])]
    obj_loss, box_loss = rpn.compute_loss(objectness, deltas, labels, [torch.zeros(5, 4)])
    # (log(1 + e^-1) + log(1 + e^-2)) / 2 = (0.313262 + 0.126928) / 2 = 0.220095
    # (all 5 anchors would give (2 * 0.313262 + 3 * 0.126928) / 5 = 0.201462).
    torch.testing.assert_close(obj_loss, torch.tensor(0.220095), atol=1e-6, rtol=0)
    # One positive: 0.5 - 1/18 = 0.444444, over 2 sampled -> 0.222222 (all 5: 0.888889 / 5).
    torch.testing.assert_close(box_loss, torch.tensor(0.222222), atol=1e-6, rtol=0)


# Two levels for filter_proposals, one image of (height 80, width 100):
#   level 0: p0 [10,10,50,50] logit 3.0; p1 [12,12,52,52] logit 2.0 (IoU with p0
#            38^2 / (2 * 40^2 - 38^2) = 1444 / 1756 = 0.82); p2 [60,60,90,90] logit 1.0
#   level 1: p3 [11,11,51,51] logit 2.5 (IoU 0.9 with p0, other level); p4 [-20,70,30,130] logit 0.5
LEVEL_PROPOSALS = torch.tensor([[
    [10.0, 10.0, 50.0, 50.0], [12.0, 12.0, 52.0, 52.0], [60.0, 60.0, 90.0, 90.0],
    [11.0, 11.0, 51.0, 51.0], [-20.0, 70.0, 30.0, 130.0],
]])
LEVEL_LOGITS = torch.tensor([3.0, 2.0, 1.0, 2.5, 0.5])
P0, P3 = [10.0, 10.0, 50.0, 50.0], [11.0, 11.0, 51.0, 51.0]
P2_CLIPPED, P4_CLIPPED = [60.0, 60.0, 90.0, 80.0], [0.0, 70.0, 30.0, 80.0]  # y clipped to 80, x to 0


def _filter(rpn, proposals=LEVEL_PROPOSALS, logits=LEVEL_LOGITS, sizes=((80, 100),), per_level=(3, 2)):
    return rpn.filter_proposals(proposals, logits, list(sizes), list(per_level))


def test_filter_proposals_nms_within_a_level_not_across_levels():
    # NMS 0.7: p1 (0.82 with p0, same level) goes; p3 (0.9 with p0, other level) stays.
    # Output by score: p0 (3.0), p3 (2.5), p2 (1.0), p4 (0.5); p2, p4 clipped to the 80 x 100 image.
    boxes = _filter(_rpn(nms_thresh=0.7).eval())
    assert len(boxes) == 1
    assert_close(boxes[0], torch.tensor([P0, P3, P2_CLIPPED, P4_CLIPPED]))


def test_filter_proposals_pre_nms_top_n_is_per_level_and_per_mode():
    rpn = _rpn(pre_nms_top_n=(1, 2), post_nms_top_n=(10, 10)).eval()
    # Testing: top 2 of each level -> level 0 {p0, p1}, level 1 {p3, p4}; NMS drops p1; p2 was
    # never a candidate (3rd of level 0) although it scores above p4.
    assert_close(_filter(rpn)[0], torch.tensor([P0, P3, P4_CLIPPED]))
    # Training: top 1 of each level -> p0 and p3.
    assert_close(_filter(rpn.train())[0], torch.tensor([P0, P3]))


def test_filter_proposals_post_nms_top_n_keeps_the_best_after_nms():
    rpn = _rpn(post_nms_top_n=(1, 2)).eval()
    # After NMS the ranking is p0, p3, p2, p4: testing keeps 2, training 1.
    assert_close(_filter(rpn)[0], torch.tensor([P0, P3]))
    assert_close(_filter(rpn.train())[0], torch.tensor([P0]))


def test_filter_proposals_clips_then_drops_small_and_low_score_boxes():
    proposals = torch.tensor([[
        [10.0, 10.0, 30.0, 30.0],  # logit 2.0 -> sigmoid 0.881 -> kept
        [40.0, 40.0, 40.5, 60.0],  # logit 3.0, width 0.5 < min_size 1 -> dropped
        [-10.0, 0.0, 0.5, 50.0],  # logit 2.5, width 10.5 but clipped to [0, 0, 0.5, 50] -> dropped
        [50.0, 50.0, 70.0, 70.0],  # logit 0.2 -> sigmoid 0.550 < 0.6 -> dropped
        [70.0, 10.0, 90.0, 30.0],  # logit 0.5 -> sigmoid 0.622 >= 0.6 -> kept
    ]])
    logits = torch.tensor([2.0, 3.0, 2.5, 0.2, 0.5])
    rpn = _rpn(min_size=1.0, score_thresh=0.6).eval()
    boxes = _filter(rpn, proposals, logits, per_level=(5,))
    assert_close(boxes[0], torch.tensor([[10.0, 10.0, 30.0, 30.0], [70.0, 10.0, 90.0, 30.0]]))


def test_filter_proposals_clips_each_image_to_its_own_size():
    # The same box [-5, -5, 70, 90] in two images: (h 60, w 100) and (h 100, w 40).
    proposals = torch.tensor([[[-5.0, -5.0, 70.0, 90.0]], [[-5.0, -5.0, 70.0, 90.0]]])
    boxes = _filter(_rpn().eval(), proposals, torch.tensor([1.0, 1.0]), sizes=((60, 100), (100, 40)),
                    per_level=(1,))
    assert_close(boxes[0], torch.tensor([[0.0, 0.0, 70.0, 60.0]]))
    assert_close(boxes[1], torch.tensor([[0.0, 0.0, 40.0, 90.0]]))


def test_forward_with_a_zero_head_gives_hand_computed_losses():
    # One 32x32 square anchor per cell of a 4x4 stride-16 map on a 64x64 image: anchors centred at
    # (cx, cy) in {0, 16, 32, 48}^2. gt [0, 0, 32, 40] (area 1280), centre (16, 20).
    # IoU = inter / (1024 + 1280 - inter), inter = x-overlap * y-overlap:
    #   x-overlap by cx: 0 -> 16, 16 -> 32, 32 -> 16, 48 -> 0; y-overlap by cy: 0 -> 16, 16 -> 32,
    #   32 -> 24, 48 -> 8. So anchor (16, 16) = [0, 0, 32, 32]: 1024 / 1280 = 0.8 -> the only
    #   positive; anchor (16, 32): 768 / 1536 = 0.5 -> ignored; every other one <= 512 / 1792 =
    #   0.286 -> background: 1 positive + 14 negatives sampled (batch 256).
    head = RPNHead(4, 1)
    for conv in (head.cls_logits, head.bbox_pred):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    rpn = RegionProposalNetwork(AnchorGenerator(((32,),), ((1.0,),)), head).train()
    features = {"0": torch.rand(1, 4, 4, 4)}
    gt = torch.tensor([[0.0, 0.0, 32.0, 40.0]])
    boxes, losses = rpn(torch.zeros(1, 3, 64, 64), [(64, 64)], features,
                        [{"boxes": gt, "labels": torch.tensor([1])}])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg"}
    # Every logit is 0: BCE = log 2 whatever the labels.
    torch.testing.assert_close(losses["loss_objectness"], torch.tensor(0.693147), atol=1e-6, rtol=0)
    # Positive target (unit weights): dx 0, dy (20 - 16) / 32 = 0.125, dw log 1 = 0,
    # dh log(40 / 32) = 0.223144; smooth L1 vs 0: (0.125 - 1/18) + (0.223144 - 1/18) = 0.237033,
    # over 15 sampled anchors = 0.0158022.
    torch.testing.assert_close(losses["loss_rpn_box_reg"], torch.tensor(0.0158022), atol=1e-6, rtol=0)
    assert len(boxes) == 1 and boxes[0].shape[1] == 4
