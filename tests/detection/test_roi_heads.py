"""RoIHeads: box post-processing against torchvision's, proposal labelling and sampling, Cascade
R-CNN's stages."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import RoIHeads

from visionkit.detection.roi_heads import (
    CascadeStage,
    FastRCNNPredictor,
    RoIPool,
    TwoMLPHead,
    label_proposals,
    postprocess_detections,
    refined_boxes,
)
from visionkit.detection.roi_heads import RoIHeads as BoxRoIHeads
from visionkit.ops import BoxCoder, Matcher

from ..ops._helpers import assert_close, random_boxes


def _tv_roi_heads(score_thresh, nms_thresh, detections_per_img) -> RoIHeads:
    return RoIHeads(
        None, None, None, 0.5, 0.5, 512, 0.25, None, score_thresh, nms_thresh, detections_per_img
    )


@pytest.mark.parametrize("counts", [[300], [200, 0, 50], [0]])
@pytest.mark.parametrize("num_classes", [2, 21, 91])
@pytest.mark.parametrize("options", [(0.05, 0.5, 100), (0.0, 0.7, 10), (0.3, 0.3, 1000)])
def test_postprocess_detections_matches_torchvision(device, counts, num_classes, options):
    score_thresh, nms_thresh, per_img = options
    g = torch.Generator().manual_seed(sum(counts) + num_classes)
    total = sum(counts)
    logits = (torch.randn(total, num_classes, generator=g) * 3).to(device)
    deltas = (torch.randn(total, 4 * num_classes, generator=g) * 0.5).to(device)
    proposals = [random_boxes(c, seed=c + i, device=device, size=400.0)
                 for i, c in enumerate(counts)]
    shapes = [(350, 380), (200, 500), (400, 400)][: len(counts)]

    ours = postprocess_detections(
        logits, deltas, proposals, shapes, box_coder=BoxCoder((10.0, 10.0, 5.0, 5.0)),
        score_thresh=score_thresh, nms_thresh=nms_thresh, detections_per_img=per_img,
    )
    theirs = _tv_roi_heads(*options).postprocess_detections(logits, deltas, proposals, shapes)
    for ours_part, theirs_part in zip(ours, theirs, strict=True):
        assert len(ours_part) == len(counts)
        for o, t in zip(ours_part, theirs_part, strict=True):
            assert_close(o, t)
    for boxes, scores, labels in zip(*ours, strict=True):
        assert len(boxes) <= per_img and (scores > score_thresh).all()
        assert ((labels >= 1) & (labels < num_classes)).all()


def test_postprocess_class_agnostic_regression():
    logits = torch.randn(20, 4) * 3
    deltas = torch.randn(20, 4) * 0.5
    proposals = [random_boxes(20, seed=0)]
    boxes, scores, labels = postprocess_detections(logits, deltas, proposals, [(200, 200)])
    expanded = deltas.repeat(1, 4)
    expected = postprocess_detections(logits, expanded, proposals, [(200, 200)])
    assert_close(boxes[0], expected[0][0])
    assert torch.equal(labels[0], expected[2][0])


# Hand-computed cases (detectron2 test_matcher.py style): a few boxes, expected tensors written out.

GT = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]]),  # areas 100, 400
      "labels": torch.tensor([3, 1])}
PROPOSALS = torch.tensor([
    [0.0, 0.0, 10.0, 8.0],  # IoU gt 0 = 80/100 = 0.8 -> class 3
    [20.0, 20.0, 40.0, 30.0],  # IoU gt 1 = 200/400 = 0.5, >= 0.5 (inclusive) -> class 1
    [0.0, 0.0, 10.0, 4.0],  # IoU gt 0 = 0.4 < 0.5 -> background 0
    [0.0, 0.0, 10.0, 0.5],  # IoU gt 0 = 0.05 -> background, or -1 when bg_iou_low is 0.1
    [50.0, 50.0, 60.0, 60.0],  # IoU 0 -> background, or -1 when bg_iou_low is 0.1
])
# The regression targets (weights 10, 10, 5, 5) of the two positive proposals:
#   [0,0,10,8] -> gt 0: centre y 4 -> 5, height 8 -> 10: dy = 10 * 1/8 = 1.25, dh = 5 log 1.25 = 1.115718
#   [20,20,40,30] -> gt 1: centre y 25 -> 30, height 10 -> 20: dy = 10 * 5/10 = 5, dh = 5 log 2 = 3.465736
POSITIVE_TARGETS = [[0.0, 1.25, 0.0, 1.115718], [0.0, 5.0, 0.0, 3.465736]]


def test_label_proposals_appends_gt_and_labels_by_iou():
    candidates, labels, matched = label_proposals(PROPOSALS, GT, Matcher(0.5, 0.5))
    # Candidates: the 5 proposals then the 2 gt boxes (IoU 1 with themselves -> their own class).
    assert torch.equal(candidates, torch.cat([PROPOSALS, GT["boxes"]]))
    assert torch.equal(labels, torch.tensor([3, 1, 0, 0, 0, 3, 1]))
    assert torch.equal(matched[[0, 1, 5, 6]], GT["boxes"][[0, 1, 0, 1]])


def test_label_proposals_bg_iou_low_and_between_thresholds_are_ignored():
    # bg_iou_low 0.1: proposals 3 (IoU 0.05) and 4 (IoU 0) are not backgrounds but -1.
    _, labels, _ = label_proposals(PROPOSALS, GT, Matcher(0.5, 0.5), bg_iou_low=0.1)
    assert torch.equal(labels, torch.tensor([3, 1, 0, -1, -1, 3, 1]))
    # Matcher(0.6, 0.3): proposal 1 (IoU 0.5) and proposal 2 (0.4) fall between -> -1.
    _, labels, _ = label_proposals(PROPOSALS, GT, Matcher(0.6, 0.3))
    assert torch.equal(labels, torch.tensor([3, -1, -1, 0, 0, 3, 1]))


def test_label_proposals_without_gt_is_all_background():
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    candidates, labels, matched = label_proposals(PROPOSALS, empty, Matcher(0.5, 0.5), bg_iou_low=0.1)
    assert torch.equal(candidates, PROPOSALS)
    assert torch.equal(labels, torch.zeros(5, dtype=torch.int64))
    assert torch.equal(matched, torch.zeros(5, 4))


def _zero_heads(**options) -> BoxRoIHeads:
    """RoI heads whose predictor outputs zero logits and zero deltas for every RoI."""
    predictor = FastRCNNPredictor(8, 4)
    for layer in (predictor.cls_score, predictor.bbox_pred):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    return BoxRoIHeads(RoIPool("0", 2), TwoMLPHead(2 * 2 * 2, 8), predictor, **options)


def test_select_training_samples_keeps_every_labelled_candidate_with_targets():
    # batch 512 >> 7 candidates: all labelled ones are sampled, the two -1 ones (bg_iou_low) are not.
    heads = _zero_heads(bg_iou_low=0.1)
    boxes, labels, targets = heads.select_training_samples([PROPOSALS], [GT])
    assert torch.equal(boxes[0], torch.cat([PROPOSALS[:3], GT["boxes"]]))
    assert torch.equal(labels[0], torch.tensor([3, 1, 0, 3, 1]))
    # Positives: the two proposals' hand-computed deltas, then zeros for the gt boxes themselves.
    expected = torch.tensor(POSITIVE_TARGETS + [[0.0, 0.0, 0.0, 0.0]] * 2)
    assert_close(targets[0][labels[0] > 0], expected)


def test_roi_heads_training_losses_with_a_zero_predictor():
    heads = _zero_heads(bg_iou_low=0.1).train()
    features = {"0": torch.rand(1, 2, 4, 4)}  # stride 16 for a 64 x 64 image
    detections, losses = heads(features, [PROPOSALS], [(64, 64)], [GT])
    assert detections == [] and set(losses) == {"loss_classifier", "loss_box_reg"}
    # Zero logits over 4 classes: cross-entropy log 4 = 1.386294 for every RoI.
    assert_close(losses["loss_classifier"], torch.tensor(1.386294))
    # Smooth L1 (beta 1/9) of zero deltas vs the positive targets: (1.25 - 1/18) +
    # (1.115718 - 1/18) + (5 - 1/18) + (3.465736 - 1/18) = 10.609232, over the 5 sampled RoIs.
    assert_close(losses["loss_box_reg"], torch.tensor(2.121846))


# postprocess_detections: logits [0, log 3, log 6] -> softmax exp / sum = [1, 3, 6] / 10.
LOGITS_136 = torch.tensor([[1.0, 3.0, 6.0]]).log()


def test_postprocess_zero_deltas_keep_the_proposal_for_every_class():
    proposal = torch.tensor([[10.0, 20.0, 50.0, 60.0]])
    boxes, scores, labels = postprocess_detections(LOGITS_136, torch.zeros(1, 12), [proposal], [(100, 100)])
    # Both classes pass 0.05 and class-wise NMS never compares class 1 with class 2: two
    # detections on the same box, best first.
    assert_close(boxes[0], proposal.repeat(2, 1))
    assert_close(scores[0], torch.tensor([0.6, 0.3]))
    assert torch.equal(labels[0], torch.tensor([2, 1]))
    # Score threshold 0.35: only class 2 (0.6) stays.
    _, scores, labels = postprocess_detections(LOGITS_136, torch.zeros(1, 12), [proposal], [(100, 100)],
                                               score_thresh=0.35)
    assert_close(scores[0], torch.tensor([0.6]))
    assert torch.equal(labels[0], torch.tensor([2]))


def test_postprocess_decodes_and_clips_to_each_image():
    # Image 0 (h 60, w 100): proposal [10, 20, 50, 60] = centre (30, 40), size 40 x 40. Class 2
    # deltas [1, -2, 0, 5 log 2] / (10, 10, 5, 5) -> centre (30 + 0.1*40, 40 - 0.2*40) = (34, 32),
    # size 40 x 80 -> [14, -8, 54, 72], clipped to [14, 0, 54, 60]. Class 1 (deltas 0) is the
    # proposal; its score 0.3 vs 0.6.
    # Image 1 (h 100, w 40): proposal [20, 10, 60, 50], zero deltas -> x clipped to 40: [20, 10, 40, 50];
    # and [45, 0, 70, 20] lies right of x = 40 -> width 0 after clipping -> removed (min_size).
    proposals = [torch.tensor([[10.0, 20.0, 50.0, 60.0]]),
                 torch.tensor([[20.0, 10.0, 60.0, 50.0], [45.0, 0.0, 70.0, 20.0]])]
    deltas = torch.zeros(3, 12)
    deltas[0, 8:] = torch.tensor([1.0, -2.0, 0.0, 5 * math.log(2.0)])
    logits = LOGITS_136.repeat(3, 1)
    boxes, scores, labels = postprocess_detections(logits, deltas, proposals, [(60, 100), (100, 40)])
    assert_close(boxes[0], torch.tensor([[14.0, 0.0, 54.0, 60.0], [10.0, 20.0, 50.0, 60.0]]))
    assert torch.equal(labels[0], torch.tensor([2, 1]))
    assert_close(boxes[1], torch.tensor([[20.0, 10.0, 40.0, 50.0]] * 2))
    assert_close(scores[1], torch.tensor([0.6, 0.3]))


def test_postprocess_nms_is_per_class_and_detections_per_img_caps():
    # RoI A [0, 0, 40, 40] and RoI B [2, 2, 42, 42] overlap with IoU 38^2 / (3200 - 38^2) = 0.82.
    # Softmax A = [0.1, 0.8, 0.1] (logits log 1, log 8, log 1), B = [0.1, 0.6, 0.3].
    # Class 1: A 0.8 suppresses B 0.6. Class 2: B 0.3 suppresses A 0.1. -> [A/1 0.8, B/2 0.3].
    proposals = [torch.tensor([[0.0, 0.0, 40.0, 40.0], [2.0, 2.0, 42.0, 42.0]])]
    logits = torch.tensor([[1.0, 8.0, 1.0], [1.0, 6.0, 3.0]]).log()
    deltas = torch.zeros(2, 12)
    boxes, scores, labels = postprocess_detections(logits, deltas, proposals, [(100, 100)], nms_thresh=0.5)
    assert_close(boxes[0], proposals[0])
    assert_close(scores[0], torch.tensor([0.8, 0.3]))
    assert torch.equal(labels[0], torch.tensor([1, 2]))
    boxes, scores, labels = postprocess_detections(logits, deltas, proposals, [(100, 100)],
                                                   nms_thresh=0.5, detections_per_img=1)
    assert_close(boxes[0], proposals[0][:1])
    assert torch.equal(labels[0], torch.tensor([1]))


def test_postprocess_soft_nms_lowers_the_overlapping_detection_instead_of_dropping_it():
    # The RoIs of the test above: with Soft-NMS, class 1's B stays at 0.6 x exp(-0.82^2 / 0.5)
    # and class 2's A at 0.1 x the same; scores come out lowered, best first.
    proposals = [torch.tensor([[0.0, 0.0, 40.0, 40.0], [2.0, 2.0, 42.0, 42.0]])]
    logits = torch.tensor([[1.0, 8.0, 1.0], [1.0, 6.0, 3.0]]).log()
    factor = math.exp(-(38.0 ** 2 / (3200 - 38.0 ** 2)) ** 2 / 0.5)
    boxes, scores, labels = postprocess_detections(logits, torch.zeros(2, 12), proposals, [(100, 100)],
                                                   soft_nms="gaussian", soft_nms_sigma=0.5)
    assert_close(boxes[0], proposals[0][[0, 1, 1, 0]])
    assert_close(scores[0], torch.tensor([0.8, 0.3, 0.6 * factor, 0.1 * factor]), atol=1e-6)
    assert torch.equal(labels[0], torch.tensor([1, 2, 1, 2]))
    with pytest.raises(ValueError, match="soft_nms"):
        BoxRoIHeads(None, None, None, soft_nms="hard")


def test_roi_pool_picks_the_named_map_scale_and_image():
    # Map "p" is 4 x 4 with value 4 * row + col (image 0) and 100 + that (image 1); the largest
    # image is 64 x 64, so the scale is 4 / 64 = 1/16. RoIPool rounds the box corners to cells and
    # includes the end cell: [0, 0, 16, 16] -> cells 0..1 in x and y -> max 4 * 1 + 1 = 5;
    # [48, 48, 64, 64] -> cell 3 (4 is off the map) -> 15; image 1's [0, 0, 16, 16] -> 105.
    grid = torch.arange(16.0).view(1, 1, 4, 4)
    features = {"0": torch.zeros(2, 1, 4, 4), "p": torch.cat([grid, grid + 100])}
    boxes = [torch.tensor([[0.0, 0.0, 16.0, 16.0], [48.0, 48.0, 64.0, 64.0]]),
             torch.tensor([[0.0, 0.0, 16.0, 16.0]])]
    pooled = RoIPool("p", 1)(features, boxes, [(64, 64), (48, 64)])
    assert pooled.shape == (3, 1, 1, 1)
    assert torch.equal(pooled.flatten(), torch.tensor([5.0, 15.0, 105.0]))


def test_two_mlp_head_and_predictor_by_hand():
    head = TwoMLPHead(2, 2)
    with torch.no_grad():
        head.fc6.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
        head.fc6.bias.zero_()
        head.fc7.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
        head.fc7.bias.copy_(torch.tensor([0.0, -3.0]))
    # Input [3, 1] (a [1, 2, 1, 1] RoI, flattened): fc6 -> [2, -2], ReLU -> [2, 0];
    # fc7 -> [2 + 0, 2 - 0 - 3] = [2, -1], ReLU -> [2, 0].
    out = head(torch.tensor([3.0, 1.0]).view(1, 2, 1, 1))
    assert torch.equal(out, torch.tensor([[2.0, 0.0]]))
    predictor = FastRCNNPredictor(2, 3)
    with torch.no_grad():
        predictor.cls_score.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        predictor.cls_score.bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
    # A [1, 2, 1, 1] input is flattened: logits = W [2, 0] + b = [2, 0, 2 - 1] = [2, 0, 1];
    # deltas: 4 per class, 3 classes.
    logits, deltas = predictor(out.view(1, 2, 1, 1))
    assert torch.equal(logits, torch.tensor([[2.0, 0.0, 1.0]]))
    assert deltas.shape == (1, 12)


# Cascade R-CNN: stages after the first.

def _cascade_heads(stages=(0.6, 0.7), **options) -> BoxRoIHeads:
    """Random RoI heads over a 2-channel stride-16 map, 4 classes, with ``stages`` after the first."""
    torch.manual_seed(0)
    head, predictor = TwoMLPHead(2 * 2 * 2, 8), FastRCNNPredictor(8, 4)
    cascade = [CascadeStage(TwoMLPHead(2 * 2 * 2, 8), FastRCNNPredictor(8, 4, class_agnostic=True),
                            iou, (10.0 * k, 10.0 * k, 5.0 * k, 5.0 * k))
               for k, iou in enumerate(stages, start=2)]
    return BoxRoIHeads(RoIPool("0", 2), head, predictor, cascade=cascade, **options)


def test_a_cascade_stage_labels_the_boxes_it_gets_at_its_own_iou():
    # PROPOSALS[0] has IoU 0.8 with gt 0, [1] 0.5 with gt 1, [2] 0.4: positives at 0.5 are [0, 1];
    # at 0.6 and 0.7 only [0], at 0.85 none. No ground truth is added, nothing is left out (-1).
    for iou, expected in ((0.5, [3, 1, 0, 0, 0]), (0.7, [3, 0, 0, 0, 0]), (0.85, [0] * 5)):
        stage = CascadeStage(torch.nn.Identity(), torch.nn.Identity(), iou, (20.0, 20.0, 10.0, 10.0))
        labels, targets = stage.training_targets([PROPOSALS], [GT])
        assert torch.equal(labels[0], torch.tensor(expected))
    # The stage's coder weights are twice the first stage's: twice POSITIVE_TARGETS[0].
    assert_close(targets[0][0], 2 * torch.tensor(POSITIVE_TARGETS[0]))


def test_refined_boxes_move_each_roi_by_its_most_likely_class_s_deltas_and_clip():
    proposals = [torch.tensor([[10.0, 10.0, 30.0, 30.0]]), torch.tensor([[50.0, 40.0, 70.0, 60.0]])]
    logits = torch.tensor([[9.0, 0.0, 2.0], [9.0, 1.0, 0.0]])  # background first: ignored
    deltas = torch.zeros(2, 12)
    deltas[0, 8] = 5.0  # RoI 0, class 2 (its object class with the higher score): dx = 5 / 10 -> +10 px
    deltas[0, 4] = -5.0  # RoI 0, class 1: would move it the other way
    deltas[1, 5] = 10.0  # RoI 1, class 1: dy = 10 / 10 -> +20 px, past the 64 px image's bottom
    boxes = refined_boxes(logits, deltas, proposals, [(100, 100), (64, 80)],
                          BoxCoder((10.0, 10.0, 5.0, 5.0)))
    assert torch.equal(boxes[0], torch.tensor([[20.0, 10.0, 40.0, 30.0]]))
    assert torch.equal(boxes[1], torch.tensor([[50.0, 60.0, 70.0, 64.0]]))
    # Class-agnostic deltas [R, 4]: one box whatever the scores.
    agnostic = refined_boxes(logits, deltas[:, 8:], proposals, [(100, 100), (64, 80)],
                             BoxCoder((10.0, 10.0, 5.0, 5.0)))
    assert torch.equal(agnostic[0], boxes[0])
    assert torch.equal(agnostic[1], proposals[1])


def test_cascade_inference_chains_the_stages_and_averages_their_probabilities():
    heads = _cascade_heads(score_thresh=0.0, nms_thresh=1.0).eval()
    features = {"0": torch.rand(1, 2, 4, 4)}
    pooled, outputs = [], []
    heads.box_roi_pool.register_forward_hook(lambda m, inputs, out: pooled.append(inputs[1]))
    for predictor in (heads.box_predictor, *(stage.box_predictor for stage in heads.cascade)):
        predictor.register_forward_hook(lambda m, inputs, out: outputs.append(out))
    with torch.no_grad():
        detections, losses = heads(features, [PROPOSALS], [(64, 64)])
    assert losses == {} and len(pooled) == len(outputs) == 3
    # Each stage pools the boxes the stage before it regressed, with that stage's coder.
    coders = [heads.box_coder, *(stage.box_coder for stage in heads.cascade)]
    for k in (1, 2):
        expected = refined_boxes(*outputs[k - 1], pooled[k - 1], [(64, 64)], coders[k - 1])
        assert_close(pooled[k][0], expected[0])
    # Scores: the three stages' mean probability; boxes: the last stage's deltas on its boxes.
    mean = torch.stack([F.softmax(logits, -1) for logits, _ in outputs]).mean(0)
    boxes, scores, labels = postprocess_detections(
        mean.log(), outputs[2][1], pooled[2], [(64, 64)], box_coder=coders[2], score_thresh=0.0,
        nms_thresh=1.0)
    assert_close(detections[0]["boxes"], boxes[0])
    assert_close(detections[0]["scores"], scores[0])
    assert torch.equal(detections[0]["labels"], labels[0])
    assert_close(scores[0].sort().values, mean[:, 1:].flatten().sort().values)  # every (RoI, class)


def test_cascade_training_adds_a_loss_per_stage_and_leaves_the_first_stage_s_alone():
    features = {"0": torch.rand(1, 2, 4, 4)}
    cascade = _cascade_heads(bg_iou_low=0.1).train()
    plain = _cascade_heads((), bg_iou_low=0.1).train()  # same seed: the same first stage
    _, losses = cascade(features, [PROPOSALS], [(64, 64)], [GT])
    _, first = plain(features, [PROPOSALS], [(64, 64)], [GT])
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_classifier_stage2",
                           "loss_box_reg_stage2", "loss_classifier_stage3", "loss_box_reg_stage3"}
    for name, value in first.items():
        assert_close(losses[name], value)
    sum(losses.values()).backward()
    for stage in cascade.cascade:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in stage.parameters())


def test_a_cascade_s_stages_share_the_pooled_features_gradient():
    # Three stages pool the same map: each one's gradient into it is scaled by 1/3.
    features = {"0": torch.rand(1, 2, 4, 4, requires_grad=True)}
    grads = {}
    for name, stages in (("plain", ()), ("cascade", (0.6, 0.7))):
        heads = _cascade_heads(stages).train()
        pooled = heads._pool(features, [PROPOSALS], [(64, 64)])
        (grads[name],) = torch.autograd.grad(pooled.sum(), features["0"])
    assert grads["plain"].abs().sum() > 0
    assert_close(grads["cascade"], grads["plain"] / 3)
