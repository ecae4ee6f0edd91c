"""Acceptance 1: torchvision's Faster R-CNN state dicts load, and our model then detects the same."""

import pytest
import torch
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_resnet50_fpn

from visionkit.benchmarks.detect_latency import non_trivial, same_detections
from visionkit.detection import create_detector

OPTIONS = {"min_size": 256, "max_size": 320, "box_score_thresh": 0.0, "rpn_post_nms_top_n_test": 200}


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
        assert same_detections(out, exp)  # one to one: float rounding may swap tied scores


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
