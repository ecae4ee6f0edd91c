"""FasterRCNN behaviour: losses and gradients, negatives and crowd boxes, outputs, other backbones."""

import pytest
import torch

from visionkit.detection import FasterRCNN, create_detector

SMALL = {"min_size": 64, "max_size": 96, "rpn_pre_nms_top_n_train": 200, "rpn_post_nms_top_n_train": 100,
         "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 50, "box_batch_size_per_image": 64}


@pytest.fixture(scope="module")
def model() -> FasterRCNN:
    torch.manual_seed(0)
    return create_detector("fasterrcnn_resnet18_fpn", 3, representation_size=128, fpn_channels=64,
                           **SMALL)


def targets(*boxes_and_labels, crowd=None):
    boxes, labels = zip(*boxes_and_labels, strict=True) if boxes_and_labels else ((), ())
    t = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
         "labels": torch.tensor(labels, dtype=torch.int64)}
    if crowd is not None:
        t["iscrowd"] = torch.tensor(crowd)
    return t


def test_training_returns_the_four_losses_with_gradients(model):
    model.train()
    images = [torch.rand(3, 60, 80), torch.rand(3, 70, 50)]
    losses = model(images, [targets(([5, 5, 40, 30], 1), ([30, 20, 70, 55], 2)), targets()])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total) and all(v > 0 for v in losses.values())
    model.zero_grad()
    total.backward()
    assert model.roi_heads.box_predictor.bbox_pred.weight.grad.abs().sum() > 0
    assert model.rpn.head.cls_logits.weight.grad.abs().sum() > 0


def test_crowd_boxes_are_left_out_of_training(model):
    model.train()
    image = [torch.rand(3, 64, 64)]
    torch.manual_seed(1)
    only_crowd = model(image, [targets(([5, 5, 40, 30], 1), crowd=[1])])
    torch.manual_seed(1)
    empty = model(image, [targets()])
    for key in only_crowd:
        torch.testing.assert_close(only_crowd[key], empty[key])
    assert empty["loss_box_reg"].item() == 0.0 and empty["loss_rpn_box_reg"].item() == 0.0


def test_bad_targets_are_named(model):
    model.train()
    with pytest.raises(ValueError, match="target 0: box 0 .* has no positive width"):
        model([torch.rand(3, 32, 32)], [targets(([10, 5, 10, 20], 1))])
    with pytest.raises(ValueError, match="target 0: labels must be int64"):
        model([torch.rand(3, 32, 32)], [{"boxes": torch.zeros(1, 4), "labels": torch.zeros(1)}])
    with pytest.raises(ValueError, match="needs targets"):
        model([torch.rand(3, 32, 32)])


def test_eval_detections_are_in_original_image_pixels(model):
    model.eval()
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        out = model([torch.rand(3, 40, 120), torch.rand(3, 200, 50)])
    model.roi_heads.score_thresh = 0.05
    for det, (h, w) in zip(out, [(40, 120), (200, 50)], strict=True):
        assert set(det) == {"boxes", "labels", "scores"} and len(det["boxes"]) > 0
        assert det["boxes"].dtype == torch.float32 and det["labels"].dtype == torch.int64
        assert (det["boxes"][:, 2] <= w).all() and (det["boxes"][:, 3] <= h).all()
        assert ((det["labels"] >= 1) & (det["labels"] <= 2)).all()
        assert (det["scores"][:-1] >= det["scores"][1:]).all()


@pytest.mark.parametrize("name, options", [
    ("fasterrcnn_vgg16", {"roi_pool": "pool", "representation_size": 64}),
    ("fasterrcnn_mobilenet_v3_large_fpn", {"representation_size": 64, "fpn_channels": 32}),
])
def test_other_backbones_train_and_detect(name, options):
    torch.manual_seed(0)
    model = create_detector(name, 2, **options, **SMALL)
    losses = model([torch.rand(3, 64, 64)], [targets(([8, 8, 50, 40], 1))])
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        det = model([torch.rand(3, 64, 64)])[0]
    assert det["boxes"].shape[1] == 4 and len(det["boxes"]) == len(det["scores"])
