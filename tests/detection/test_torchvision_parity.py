"""Acceptance 1: torchvision's Faster R-CNN state dicts load, and our model then detects the same."""

import pytest
import torch
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_resnet50_fpn

from visionkit.detection import create_detector

OPTIONS = {"min_size": 256, "max_size": 320, "box_score_thresh": 0.0, "rpn_post_nms_top_n_test": 200}


def non_trivial(reference: torch.nn.Module) -> torch.nn.Module:
    """BatchNorm statistics from random images and a predictor scaled to the box features.

    With torchvision's random init the features vanish or explode and every score is ~1/91;
    this gives spread-out scores and boxes that move off their proposals.
    """
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average: one batch sets the statistics
    reference.backbone.train()
    with torch.no_grad():
        reference.backbone(torch.rand(2, 3, 256, 320))
    reference.eval()
    features = []
    hook = reference.roi_heads.box_head.register_forward_hook(lambda m, i, out: features.append(out))
    with torch.no_grad():
        reference([torch.rand(3, 200, 240)])
    hook.remove()
    norm = float(features[0].norm(dim=1).mean())
    with torch.no_grad():
        reference.roi_heads.box_predictor.cls_score.weight.normal_(0, 3.0 / norm)
        reference.roi_heads.box_predictor.bbox_pred.weight.normal_(0, 1.0 / norm)
    return reference


def canonical(det: dict) -> dict:
    """Detections in a total order (score, label, box), so equal-score ties compare stably."""
    keys = torch.cat([det["scores"][:, None].double(), det["labels"][:, None].double(),
                      det["boxes"].double()], dim=1)
    order = sorted(range(len(keys)), key=lambda i: (-keys[i, 0].item(), *keys[i, 1:].tolist()))
    return {k: v[order] for k, v in det.items()}


def assert_same_detections(out: dict, exp: dict, score_tol: float = 1e-4, box_tol: float = 1e-3) -> None:
    """Each expected detection has its own equal one (label, score, box) among ours.

    Matched one to one rather than compared in sorted order: RoIAlign sums in another order
    on the CPU (float rounding), which may swap two detections whose scores tie to 1e-7.
    """
    exp, out = canonical(exp), canonical(out)
    torch.testing.assert_close(out["scores"], exp["scores"], atol=score_tol, rtol=0)
    free = torch.ones(len(out["scores"]), dtype=torch.bool)
    for score, label, box in zip(exp["scores"], exp["labels"], exp["boxes"], strict=True):
        same = (free & (out["labels"] == label) & ((out["scores"] - score).abs() <= score_tol)
                & ((out["boxes"] - box).abs().amax(1) <= box_tol))
        assert same.any(), f"none of ours equals label {int(label)} score {float(score):.5f} {box.tolist()}"
        free[torch.where(same)[0][0]] = False


@pytest.mark.parametrize("name, builder", [
    ("fasterrcnn_resnet50_fpn", fasterrcnn_resnet50_fpn),
    ("fasterrcnn_mobilenet_v3_large_fpn", fasterrcnn_mobilenet_v3_large_fpn),
])
def test_torchvision_state_dict_loads_and_detections_match(name, builder, tmp_path):
    torch.manual_seed(0)
    reference = non_trivial(builder(weights=None, weights_backbone=None, **OPTIONS))
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    ours = create_detector(name, num_classes=91, pretrained=path, **OPTIONS).eval()

    images = [torch.rand(3, 200, 300), torch.rand(3, 260, 180)]
    with torch.no_grad():
        expected, got = reference(images), ours(images)
    for exp, out in zip(expected, got, strict=True):
        assert len(exp["boxes"]) == len(out["boxes"]) == 100
        assert exp["scores"].max() > 0.3 and len(exp["scores"].unique()) > 50  # non-trivial
        assert_same_detections(out, exp)


def test_training_losses_match_torchvision_when_every_sample_is_used(tmp_path):
    # Sampling everything makes the losses independent of the samplers' random draws.
    everything = {"rpn_batch_size_per_image": 10**7, "box_batch_size_per_image": 10**7,
                  "min_size": 160, "max_size": 200}
    torch.manual_seed(0)
    reference = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, **everything)
    torch.save(reference.state_dict(), tmp_path / "m.pth")
    ours = create_detector("fasterrcnn_mobilenet_v3_large_fpn", 91, pretrained=tmp_path / "m.pth",
                           frozen_bn=False, **everything)
    images = [torch.rand(3, 150, 180), torch.rand(3, 120, 160)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 90.0, 100.0], [50.0, 5.0, 170.0, 60.0]]),
                "labels": torch.tensor([3, 17])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    expected = reference.train()(images, targets)
    got = ours.train()(images, targets)
    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-6, msg=key)
