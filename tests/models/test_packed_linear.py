"""PackedLinear: nn.Linear's results and state, a packed weight that follows the parameter."""

import copy
import io

import pytest
import torch
from torch import nn

from visionkit.models.packed_linear import PackedLinear, use_packed_linear
from visionkit.ops.packed_linear import onednn_linear_available

pytestmark = pytest.mark.skipif(not onednn_linear_available(), reason="this PyTorch build has no oneDNN")


def model_and_input() -> tuple[nn.Sequential, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 5, bias=False)), torch.randn(9, 64)


def test_swapped_layers_share_parameters_and_give_the_same_outputs():
    model, x = model_and_input()
    weights = dict(model.named_parameters())
    with torch.no_grad():
        before = model(x)
    assert use_packed_linear(model) == 2 and all(isinstance(model[i], PackedLinear) for i in (0, 2))
    assert dict(model.named_parameters()) == weights
    with torch.inference_mode():
        torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)
    assert model[0]._packed is not None  # the oneDNN path ran


def test_repacks_after_weight_changes_and_device_moves():
    model, x = model_and_input()
    use_packed_linear(model)
    with torch.inference_mode():
        model(x)
    model.load_state_dict({k: v * 2 for k, v in model.state_dict().items()})
    reference = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 5, bias=False))
    reference.load_state_dict(model.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)
        model.to(torch.float64)  # not oneDNN's path: F.linear
        torch.testing.assert_close(model(x.double()), reference.double()(x.double()))


def test_deepcopy_and_pickling_drop_the_packed_weight_and_gradients_flow():
    model, x = model_and_input()
    use_packed_linear(model)
    with torch.inference_mode():
        expected = model(x)
    twin = copy.deepcopy(model)
    assert twin[0]._packed is None
    torch.save(model, io.BytesIO())
    with torch.inference_mode():
        torch.testing.assert_close(twin(x), expected)
    x.requires_grad_()
    model(x).sum().backward()
    assert x.grad is not None and model[0].weight.grad is not None
