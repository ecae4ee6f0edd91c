"""fold_batchnorm: every fixed BatchNorm after a conv folds, and the outputs stay the same."""

import torch
from torch import nn

from visionkit.detection import create_detector
from visionkit.detection.backbones import FrozenBatchNorm2d
from visionkit.detection.inference_speed import fold_batchnorm


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
