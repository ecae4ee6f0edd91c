"""RoIHeads: box post-processing against torchvision's, proposal labelling and sampling."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.roi_heads import RoIHeads

from visionkit.detection.roi_heads import postprocess_detections
from visionkit.ops import BoxCoder

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
