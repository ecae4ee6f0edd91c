"""PackedLinear and WinogradConv2d: nn.Linear's / nn.Conv2d's results and state; the swaps take
exactly the layers they apply to and share their parameters."""

import copy
import io

import pytest
import torch
from torch import nn

from visionkit.models.fast_kernels import PackedLinear, WinogradConv2d, use_packed_linear, use_winograd
from visionkit.ops.packed_linear import onednn_linear_available
from visionkit.ops.winograd_conv import nnpack_available

needs_onednn = pytest.mark.skipif(not onednn_linear_available(), reason="this PyTorch build has no oneDNN")


def model_and_input() -> tuple[nn.Sequential, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 5, bias=False)), torch.randn(9, 64)


@needs_onednn
def test_swapped_layers_share_parameters_and_give_the_same_outputs():
    model, x = model_and_input()
    weights = dict(model.named_parameters())
    with torch.no_grad():
        before = model(x)
    assert use_packed_linear(model) == 2 and all(isinstance(model[i], PackedLinear) for i in (0, 2))
    assert dict(model.named_parameters()) == weights
    with torch.inference_mode():
        torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)
    assert model[0]._packed is not None and model[2]._packed is not None  # the oneDNN path ran


@needs_onednn
def test_repacks_after_loading_in_place_edits_and_conversions():
    model, x = model_and_input()
    use_packed_linear(model)
    reference = copy.deepcopy(model)
    with torch.inference_mode():
        model(x)
    first = model[0]._packed[2]
    model.load_state_dict({k: v * 2 for k, v in model.state_dict().items()})
    reference.load_state_dict(model.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)
    assert model[0]._packed[2] is not first
    with torch.no_grad():
        model[0].weight.mul_(-1)
        reference[0].weight.mul_(-1)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)
        model.double()  # float64: F.linear, and the packed float32 copy is gone
        assert model[0]._packed is None
        torch.testing.assert_close(model(x.double()), reference.double()(x.double()))


@needs_onednn
def test_pickled_copies_drop_the_packed_weight_and_match():
    model, x = model_and_input()
    use_packed_linear(model)
    with torch.inference_mode():
        expected = model(x)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for twin in (copy.deepcopy(model), torch.load(buffer, weights_only=False)):
        assert twin[0]._packed is None
        with torch.inference_mode():
            torch.testing.assert_close(twin(x), expected)


@needs_onednn
def test_gradients_flow_to_input_weight_and_a_lone_trainable_bias():
    model, x = model_and_input()
    use_packed_linear(model)
    x.requires_grad_()
    model(x).sum().backward()
    assert x.grad is not None and model[0].weight.grad is not None
    layer = PackedLinear(64, 3)
    layer.weight.requires_grad_(False)
    layer(torch.randn(4, 64)).sum().backward()
    torch.testing.assert_close(layer.bias.grad, torch.full((3,), 4.0))


@needs_onednn
def test_weights_made_in_inference_mode_take_f_linear():
    with torch.inference_mode():
        layer = PackedLinear(8, 4)
        x = torch.randn(2, 8)
        torch.testing.assert_close(layer(x), nn.functional.linear(x, layer.weight, layer.bias))
    assert layer._packed is None


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
