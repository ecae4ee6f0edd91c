"""create_detector: names, options, weights (files, COCO lookup, legacy keys, new class counts)."""

from dataclasses import fields

import pytest
import torch
import torchvision

from visionkit.detection import create_detector, detector_options, list_detectors
from visionkit.detection.backbones import FrozenBatchNorm2d
from visionkit.detection.fast_rcnn import FastRCNN
from visionkit.detection.faster_rcnn import FasterRCNN
from visionkit.detection.options import FasterRCNNOptions, FastRCNNOptions, RCNNOptions, constructor_arguments
from visionkit.detection.rcnn import RCNN
from visionkit.errors import ConfigError, WeightsError

SMALL = {"min_size": 64, "max_size": 64}
PREDICTOR = "roi_heads.box_predictor."


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A random fasterrcnn_resnet18_fpn (4 classes) saved as a plain state dict."""
    torch.manual_seed(0)
    model = create_detector("fasterrcnn_resnet18_fpn", 4, **SMALL)
    path = tmp_path_factory.mktemp("w") / "r18.pth"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_names_and_option_errors():
    archs = ["alexnet", "resnet18", "resnet50", "vgg16"]
    assert list_detectors() == sorted(
        ["fasterrcnn_efficientnet_lite0_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
         "fasterrcnn_resnet18_fpn", "fasterrcnn_resnet50_fpn", "fasterrcnn_vgg16",
         *[f"fast_rcnn_{a}" for a in archs], *[f"rcnn_{a}" for a in archs]])
    for option in ("min_size", "rpn_pre_nms_top_n_test", "rpn_nms_thresh", "box_score_thresh",
                   "box_nms_thresh", "box_detections_per_img", "anchor_sizes", "frozen_bn"):
        assert option in detector_options()
    with pytest.raises(ConfigError, match="unknown detector 'yolo'; known: fast_rcnn_alexnet"):
        create_detector("yolo", 3)
    with pytest.raises(ConfigError, match=r"unknown options \['box_score'\] for fasterrcnn_resnet18_fpn"):
        create_detector("fasterrcnn_resnet18_fpn", 3, box_score=0.1)
    with pytest.raises(ConfigError, match="K classes need K \\+ 1"):
        create_detector("fasterrcnn_resnet18_fpn", 1)
    with pytest.raises(ConfigError, match="roi_pool must be 'align' or, for single-level"):
        create_detector("fasterrcnn_resnet18_fpn", 3, roi_pool="pool")


def test_missing_weights_are_errors_naming_the_file(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="'nowhere.pth' is neither 'coco' nor an existing file"):
        create_detector("fasterrcnn_resnet18_fpn", 3, pretrained="nowhere.pth")
    with pytest.raises(WeightsError, match="no COCO weights exist for fasterrcnn_resnet18_fpn"):
        create_detector("fasterrcnn_resnet18_fpn", 3, pretrained="coco")
    monkeypatch.setenv("VISIONKIT_OFFLINE", "1")
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match="fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"):
        create_detector("fasterrcnn_mobilenet_v3_large_fpn", 91, pretrained="coco")


def test_file_weights_load_and_new_class_count_reinitialises_only_the_predictor(saved):
    path, state = saved
    same = create_detector("fasterrcnn_resnet18_fpn", 4, pretrained=path, **SMALL).state_dict()
    assert all(torch.equal(same[k], v) for k, v in state.items() if "num_batches" not in k)
    torch.manual_seed(1)
    other = create_detector("fasterrcnn_resnet18_fpn", 7, pretrained=path, **SMALL).state_dict()
    assert other[PREDICTOR + "cls_score.weight"].shape == (7, 256 * 4)
    for key, value in state.items():
        if not key.startswith(PREDICTOR) and "num_batches" not in key:
            assert torch.equal(other[key], value), key


def test_faster_rcnn_weights_load_into_a_cascade_whose_later_stages_start_fresh(saved, tmp_path):
    path, state = saved
    torch.manual_seed(1)
    cascade = create_detector("fasterrcnn_resnet18_fpn", 4, pretrained=path,
                              box_cascade_iou=[0.6, 0.7], **SMALL)
    loaded = cascade.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if "num_batches" not in k)
    stage = "roi_heads.cascade.1."
    assert loaded[stage + "box_predictor.bbox_pred.weight"].shape == (4, 1024)  # class-agnostic
    # its head: a fresh draw of the first stage's, not a copy of the file's
    assert not torch.equal(loaded[stage + "box_head.fc6.weight"], state["roi_heads.box_head.fc6.weight"])
    # A cascade's own weights load whole, also for another class count (predictors left fresh).
    torch.save(loaded, tmp_path / "cascade.pth")
    again = create_detector("fasterrcnn_resnet18_fpn", 4, pretrained=tmp_path / "cascade.pth",
                            box_cascade_iou=[0.6, 0.7], **SMALL).state_dict()
    assert all(torch.equal(again[k], v) for k, v in loaded.items())
    other = create_detector("fasterrcnn_resnet18_fpn", 7, pretrained=tmp_path / "cascade.pth",
                            box_cascade_iou=[0.6, 0.7], **SMALL).state_dict()
    assert other[stage + "box_predictor.cls_score.weight"].shape == (7, 1024)
    assert torch.equal(other[stage + "box_head.fc6.weight"], loaded[stage + "box_head.fc6.weight"])
    with pytest.raises(WeightsError, match="unexpected keys roi_heads.cascade"):
        create_detector("fasterrcnn_resnet18_fpn", 4, pretrained=tmp_path / "cascade.pth", **SMALL)


def test_checkpoint_prefix_and_legacy_torchvision_keys_load(saved, tmp_path):
    path, state = saved
    legacy = {}
    for key, value in state.items():
        key = key.replace("rpn.head.conv.0.0.", "rpn.head.conv.")
        for block in ("inner_blocks", "layer_blocks"):
            for i in range(4):
                key = key.replace(f"fpn.{block}.{i}.0.", f"fpn.{block}.{i}.")
        legacy[f"model.{key}"] = value
    assert "model.rpn.head.conv.weight" in legacy
    torch.save({"state_dict": legacy, "epoch": 3}, tmp_path / "old.ckpt")
    loaded = create_detector("fasterrcnn_resnet18_fpn", 4, pretrained=tmp_path / "old.ckpt", **SMALL)
    assert torch.equal(loaded.state_dict()["rpn.head.conv.0.0.weight"], state["rpn.head.conv.0.0.weight"])


def test_weights_that_do_not_fit_name_the_keys(saved, tmp_path):
    path, state = saved
    broken = {k: v for k, v in state.items() if not k.startswith("rpn.")}
    broken["extra.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(WeightsError, match=r"broken.pth: weights do not fit .* missing keys rpn.head.*"
                                           r"unexpected keys extra.weight"):
        create_detector("fasterrcnn_resnet18_fpn", 4, pretrained=tmp_path / "broken.pth")
    with pytest.raises(WeightsError, match="shape mismatch"):
        create_detector("fasterrcnn_resnet50_fpn", 4, pretrained=path)


def test_pretrained_backbone_freezing_and_frozen_batchnorm(tmp_path):
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = create_detector("fasterrcnn_resnet18_fpn", 3, pretrained_backbone=tmp_path / "resnet18.pth")
    body = model.backbone.body
    assert torch.equal(body.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    assert isinstance(body.bn1, FrozenBatchNorm2d) and model.config["frozen_bn"] is True
    # torchvision's default with pretrained weights: layer2..4 train, stem and layer1 frozen.
    assert not body.conv1.weight.requires_grad and not body.layer1[0].conv1.weight.requires_grad
    assert body.layer2[0].conv1.weight.requires_grad
    scratch = create_detector("fasterrcnn_resnet18_fpn", 3)
    assert isinstance(scratch.backbone.body.bn1, torch.nn.BatchNorm2d)
    assert all(p.requires_grad for p in scratch.parameters())
    with pytest.raises(ConfigError, match="trainable_backbone_layers must be in \\[0, 5\\]"):
        create_detector("fasterrcnn_resnet18_fpn", 3, trainable_backbone_layers=6)


def test_frozen_batchnorm_equals_batchnorm_in_eval_mode():
    bn = torch.nn.BatchNorm2d(8).eval()
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
        bn.weight.normal_()
        bn.bias.normal_()
    frozen = FrozenBatchNorm2d(8)
    frozen.load_state_dict(bn.state_dict())
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(frozen(x), bn(x))


def test_efficientnet_lite0_fpn_loads_imagenet_stages_and_freezes_like_torchvision():
    from visionkit.models import create_classifier

    classifier = create_classifier("efficientnet_lite0", 1000, pretrained="imagenet").eval()
    model = create_detector("fasterrcnn_efficientnet_lite0_fpn", 3, pretrained_backbone="imagenet",
                            **SMALL).eval()
    body, net = model.backbone.body, classifier.backbone.net
    assert torch.equal(body._blocks[15]._project_conv.weight, net._blocks[15]._project_conv.weight)
    assert isinstance(body._bn0, FrozenBatchNorm2d) and body._bn0.eps == 1e-3
    # default 3 of 5 groups train: stem + stages 1-2 frozen, stage 3 on trains
    assert not body._conv_stem.weight.requires_grad and not body._blocks[2]._expand_conv.weight.requires_grad
    assert body._blocks[3]._expand_conv.weight.requires_grad
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        maps = body(x)
        reference = net.stem(x)
        for block in net._blocks:
            reference = block(reference)
    assert [tuple(m.shape[1:]) for m in maps.values()] == [(40, 12, 16), (112, 6, 8), (320, 3, 4)]
    torch.testing.assert_close(maps["2"], reference)  # frozen BatchNorm = the classifier's eval BN
    assert [len(s) for s in model.rpn.anchor_generator.sizes] == [2, 2, 2, 2]
    assert model.config["image_mean"] == [127 / 255] * 3  # the [-1, 1] inputs the weights expect
    scratch = create_detector("fasterrcnn_efficientnet_lite0_fpn", 3, **SMALL)
    assert isinstance(scratch.backbone.body._bn0, torch.nn.BatchNorm2d)
    assert scratch.backbone.body._bn0.eps == 1e-3 and all(p.requires_grad for p in scratch.parameters())
    with pytest.raises(ConfigError, match="returned_layers must be increasing stages among 0..6"):
        create_detector("fasterrcnn_efficientnet_lite0_fpn", 3, returned_layers=[4, 2])


@pytest.mark.parametrize("options_class, model_class, builders_own", [
    (FasterRCNNOptions, FasterRCNN, {"trainable_backbone_layers", "frozen_bn", "returned_layers",
                                     "fpn_channels", "anchor_sizes", "aspect_ratios", "roi_output_size",
                                     "roi_pool", "sampling_ratio", "aligned"}),
    (FastRCNNOptions, FastRCNN, {"trainable_backbone_layers", "frozen_bn", "proposals"}),
    (RCNNOptions, RCNN, {"trainable_backbone_layers", "frozen_bn", "proposals"}),
])
def test_every_option_reaches_the_model_or_its_builder(options_class, model_class, builders_own):
    # The builders pass the options the constructor names; the rest must be ones they use.
    options = options_class()
    passed = constructor_arguments(model_class, options)
    assert set(passed) == {f.name for f in fields(options)} - builders_own
    assert all(passed[name] == getattr(options, name) for name in passed)
