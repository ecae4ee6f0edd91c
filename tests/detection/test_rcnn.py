"""R-CNN and Fast R-CNN: warping geometry, zero-delta regression, RoI sampling, training and builders."""

import pytest
import torch
import torchvision

from visionkit.detection import FastRCNN, create_detector
from visionkit.detection.rcnn import RCNN, context_boxes, warp_regions
from visionkit.errors import ConfigError
from visionkit.ops import box_iou

TARGETS = [
    {"boxes": torch.tensor([[10.0, 20, 80, 90]]), "labels": torch.tensor([1])},
    {"boxes": torch.tensor([[30.0, 30, 100, 120], [5, 5, 50, 40]]), "labels": torch.tensor([2, 3])},
]


def images():
    torch.manual_seed(0)
    return [torch.rand(3, 128, 144), torch.rand(3, 140, 120)]


def jittered(boxes, count, scale, generator):
    """``count`` random boxes around each of ``boxes`` (offsets up to ``scale`` x the box size)."""
    repeats = boxes.repeat_interleave(count, 0)
    size = (repeats[:, 2:] - repeats[:, :2]).repeat(1, 2)
    moved = repeats + (torch.rand(repeats.shape, generator=generator) - 0.5) * 2 * scale * size
    return torch.cat([moved[:, :2], torch.maximum(moved[:, 2:], moved[:, :2] + 2)], 1)


def proposals():
    g = torch.Generator().manual_seed(0)
    out = []
    for target in TARGETS:
        near = jittered(target["boxes"], 40, 0.08, g)  # mostly IoU >= 0.5
        far = jittered(target["boxes"], 80, 0.6, g)  # mostly background
        out.append(torch.cat([near, far]).clamp(0, 110))
    return out


def test_context_warp_puts_the_box_at_the_padding():
    image = torch.zeros(3, 100, 120)
    image[:, 20:60, 30:90] = 1.0  # box x 30..90, y 20..60 (end exclusive)
    box = torch.tensor([[30.0, 20, 90, 60]])
    crop = warp_regions(image, box, warp_size=32, padding=4)[0, 0]
    assert crop[5:27, 5:27].min() > 0.99  # inside [4, 28): the box
    assert crop[:3].max() < 0.01 and crop[29:].max() < 0.01  # context rows above and below
    assert crop[:, :3].max() < 0.01 and crop[:, 29:].max() < 0.01
    grown = context_boxes(box, 32, 4)
    torch.testing.assert_close(grown, torch.tensor([[20.0, 20 - 40 / 6, 100, 60 + 40 / 6]]))  # 4/24


def test_zero_deltas_return_the_proposal_itself():
    model = create_detector("rcnn_resnet18", 3, warp_size=32, context_padding=4,
                            box_score_thresh=0.0, box_nms_thresh=1.0).eval()
    with torch.no_grad():
        model.box_predictor.bbox_pred.weight.zero_()
        model.box_predictor.bbox_pred.bias.zero_()
    given = torch.tensor([[10.0, 12, 60, 70], [70, 20, 110, 100]])
    with torch.no_grad():
        out = model([torch.rand(3, 128, 144)], proposals=[given])[0]
    for box in given:
        assert box_iou(box[None], out["boxes"]).max() > 1 - 1e-5


def test_fast_rcnn_samples_the_papers_roi_mix():
    model = create_detector("fast_rcnn_resnet18", 4, min_size=128, max_size=160)
    heads = model.roi_heads
    boxes, labels, _ = heads.select_training_samples(proposals(), TARGETS)
    for image_boxes, image_labels, target in zip(boxes, labels, TARGETS, strict=True):
        assert len(image_labels) == 64
        assert 0 < (image_labels > 0).sum() <= 16  # 25 % foreground at most
        iou = box_iou(target["boxes"], image_boxes).max(0).values
        background = image_labels == 0
        assert (iou[background] >= 0.1).all() and (iou[background] < 0.5).all()
        assert (iou[~background] >= 0.5).all()


def test_rcnn_samples_32_positives_and_96_backgrounds_per_batch():
    model = create_detector("rcnn_resnet18", 4, warp_size=32)
    boxes, labels, deltas = model.sample_regions(proposals(), TARGETS)
    assert len(labels) == 128 and int((labels > 0).sum()) == 32 and int((labels == 0).sum()) == 96
    assert sum(len(b) for b in boxes) == 128 and deltas.shape == (128, 4)


@pytest.mark.parametrize("name", ["fast_rcnn_resnet18", "rcnn_resnet18", "fast_rcnn_alexnet"])
def test_train_step_and_detections(name):
    options = {"warp_size": 32} if name.startswith("rcnn") else {"min_size": 128, "max_size": 160}
    model = create_detector(name, 4, **options)
    losses = model(images(), TARGETS, proposals=proposals())
    assert set(losses) == {"loss_classifier", "loss_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        out = model(images(), proposals=proposals())
    assert len(out) == 2 and set(out[0]) == {"boxes", "labels", "scores"}
    assert ((out[0]["labels"] >= 1) & (out[0]["labels"] <= 3)).all()


def test_without_proposals_the_generator_runs():
    model = create_detector("fast_rcnn_resnet18", 3, min_size=96, max_size=96,
                            proposals={"max_proposals": 30}).eval()
    calls = []
    generator = model.proposal_generator
    model.proposal_generator = lambda image: calls.append(image.shape) or generator(image)
    with torch.no_grad():
        model([torch.rand(3, 64, 80)])
    assert calls == [(64, 80, 3)]
    with pytest.raises(ValueError, match="needs targets"):
        model.train()([torch.rand(3, 64, 80)])


def test_builders_weights_and_errors(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    fast = create_detector("fast_rcnn_resnet18", 3, pretrained_backbone=str(path))
    assert isinstance(fast, FastRCNN)
    torch.testing.assert_close(fast.backbone.body.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    assert not fast.backbone.body.conv1.weight.requires_grad  # 3 stages train by default when weighted
    rcnn = create_detector("rcnn_resnet18", 3, pretrained_backbone=str(path), warp_size=32)
    assert isinstance(rcnn, RCNN)
    torch.testing.assert_close(rcnn.cnn.net.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)

    # a whole-detector file with another class count: everything but the predictor loads
    saved = tmp_path / "fast.pth"
    torch.save(fast.state_dict(), saved)
    again = create_detector("fast_rcnn_resnet18", 5, pretrained=str(saved))
    torch.testing.assert_close(again.roi_heads.box_head.fc6.weight, fast.roi_heads.box_head.fc6.weight)
    assert again.roi_heads.box_predictor.cls_score.out_features == 5
    assert again.config["proposals"]["mode"] == "recall"  # ProposalOptions default

    with pytest.raises(ConfigError, match=r"unknown options \['anchor_sizes'\] for fast_rcnn_vgg16"):
        create_detector("fast_rcnn_vgg16", 3, anchor_sizes=[[32]])
    with pytest.raises(ConfigError, match="proposals: .*mode must be one of"):
        create_detector("rcnn_alexnet", 3, proposals={"mode": "slow"})
    with pytest.raises(ValueError, match="roi_pool must be 'pool' or 'align'"):
        create_detector("fast_rcnn_alexnet", 3, roi_pool="max")


def test_heads_train_on_cached_features_and_the_cnn_stays_put():
    from visionkit.detection.rcnn_heads import cache_region_features, train_heads_on_features

    torch.manual_seed(0)
    model = create_detector("rcnn_resnet18", 4, warp_size=32)
    cnn_before = {k: v.clone() for k, v in model.cnn.state_dict().items()}
    batches = [(images(), TARGETS, proposals())] * 2
    cached = cache_region_features(model, batches)
    assert cached.features.shape == (256, 512) and cached.labels.shape == (256,)
    assert int((cached.labels > 0).sum()) == 64 and model.training
    history = train_heads_on_features(model, cached, epochs=60, lr=1e-2,
                                      generator=torch.Generator().manual_seed(0))
    assert history[-1] < 0.5 * history[0]  # the heads fit the cached regions
    for key, value in model.cnn.state_dict().items():
        assert torch.equal(value, cnn_before[key]), key


def test_cached_features_leave_crowd_boxes_out_and_cap_the_proposals():
    from visionkit.detection.rcnn_heads import cache_region_features

    model = create_detector("rcnn_resnet18", 3, warp_size=32, max_proposals_train=2,
                            region_batch_size=1000)
    target = {"boxes": torch.tensor([[10.0, 10, 60, 60]]), "labels": torch.tensor([2]),
              "iscrowd": torch.tensor([1])}
    given = [torch.tensor([[10.0, 10, 60, 60], [12, 12, 58, 58], [11, 11, 61, 61]])]
    cached = cache_region_features(model, [([torch.rand(3, 80, 80)], [target], given)])
    assert cached.labels.tolist() == [0, 0]  # crowd box out, 2 of 3 proposals, all background
