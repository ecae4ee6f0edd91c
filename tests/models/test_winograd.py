"""use_winograd swaps exactly the plain 3x3 stride-1 convolutions, sharing their parameters."""

import pytest
import torch
from torch import nn

from visionkit.models.winograd import WinogradConv2d, use_winograd
from visionkit.ops.winograd_conv import nnpack_available


def test_only_plain_3x3_stride_1_convolutions_are_swapped_and_parameters_are_shared():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                          nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.Conv2d(8, 8, 3, padding="same"),
                          nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False)), nn.Conv2d(8, 4, 1))
    weights = {name: p for name, p in model.named_parameters()}
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        before = model(x)
    assert use_winograd(model) == 2
    assert [type(m) is WinogradConv2d for m in (model[0], model[2], model[3], model[4], model[5][0])] == [
        True, False, False, False, True]
    assert model[5][0].bias is None
    assert {name: p for name, p in model.named_parameters()} == weights  # same objects, same names
    with torch.no_grad():
        after = model(x)
    tolerance = 5e-5 if nnpack_available() else 0.0
    torch.testing.assert_close(after, before, rtol=0, atol=tolerance * float(before.abs().max()))
    assert use_winograd(model) == 0  # already swapped


@pytest.mark.skipif(not nnpack_available(), reason="this PyTorch build has no NNPACK")
def test_swapped_resnet_classifier_gives_the_same_predictions():
    from visionkit.models import create_classifier
    model = create_classifier("resnet18", 5).eval()
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
        assert use_winograd(model) == 13  # 16 3x3 convs, 3 of them stride 2 (the stem is 7x7)
        after = model(x)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-4 * float(before.abs().max()))
    assert torch.equal(after.argmax(1), before.argmax(1))
