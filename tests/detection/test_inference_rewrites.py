"""Inference rewrites: every fixed BatchNorm after a conv folds; outputs and detections stay the same."""

import pytest
import torch
from torch import nn

from visionkit.benchmarks.detect_latency import same_detections
from visionkit.data.images import read_image
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.demo.weights import DETECTOR_FILE
from visionkit.detection import create_detector
from visionkit.detection.backbones import FrozenBatchNorm2d
from visionkit.detection.inference_rewrites import fold_batchnorm
from visionkit.inference.detector_loading import load_detector
from visionkit.models.fast_kernels import PackedLinear, WinogradConv2d
from visionkit.ops.winograd_conv import MIN_PIXELS, nnpack_available


def randomise_statistics(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, FrozenBatchNorm2d | nn.BatchNorm2d):
            n = module.running_mean.shape[0]
            module.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            with torch.no_grad():
                module.weight.copy_(torch.rand(n, generator=g) + 0.5)
                module.bias.copy_(torch.randn(n, generator=g) * 0.1)


def test_frozen_resnet_and_mobilenet_fold_completely_with_equal_features():
    for name in ("fasterrcnn_resnet18_fpn", "fasterrcnn_mobilenet_v3_large_fpn"):
        model = create_detector(name, 3, frozen_bn=True, min_size=96, max_size=96).eval()
        randomise_statistics(model)
        x = torch.rand(1, 3, 96, 128)
        with torch.no_grad():
            before = model.backbone(x)
            norms = sum(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
            assert fold_batchnorm(model) == norms > 0
            assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
            after = model.backbone(x)
        for key in before:
            torch.testing.assert_close(after[key], before[key], rtol=1e-4, atol=1e-4)


def test_training_batchnorm_is_left_alone_and_eval_batchnorm_folds():
    model = create_detector("fast_rcnn_resnet18", 3, frozen_bn=False)
    assert fold_batchnorm(model.train()) == 0
    randomise_statistics(model)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model.eval().backbone(x)["0"]
        # up to layer3: the stem, 6 blocks x 2 and 2 downsample branches
        assert fold_batchnorm(model) == 15 == 1 + 6 * 2 + 2
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        torch.testing.assert_close(model.backbone(x)["0"], before, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not nnpack_available(), reason="this PyTorch build has no NNPACK")
def test_trained_demo_detector_detects_the_same_with_and_without_fast_kernels(tmp_path, monkeypatch):
    root = make_shapes_detection(tmp_path, n_train=0, n_val=4, size=256, seed=11)
    images = [torch.tensor(read_image(p)).permute(2, 0, 1).float() / 255
              for p in sorted((root / "images" / "val").glob("*.png"))]
    options = {"min_size": 256, "max_size": 256}  # stride-4 maps of 64x64: over MIN_PIXELS
    monkeypatch.setenv("VISIONKIT_FAST_KERNELS", "0")
    exact = load_detector(DETECTOR_FILE, **options).model
    monkeypatch.delenv("VISIONKIT_FAST_KERNELS")
    fast = load_detector(DETECTOR_FILE, **options).model
    assert not any(isinstance(m, WinogradConv2d | PackedLinear) for m in exact.modules())
    assert any(isinstance(m, PackedLinear) for m in fast.modules())
    large = []
    for module in fast.modules():
        if isinstance(module, WinogradConv2d):
            module.register_forward_hook(
                lambda m, i, o: large.append(i[0].shape[-1] * i[0].shape[-2] >= MIN_PIXELS))
    with torch.inference_mode():
        for image in images:
            expected, got = exact([image])[0], fast([image])[0]
            assert len(expected["boxes"]) > 0
            assert same_detections(got, expected, score_tol=1e-4, box_tol=1e-2)
    assert any(large) and not all(large)  # both convolution kernels ran
    assert all(m._packed is not None for m in fast.modules() if isinstance(m, PackedLinear))
