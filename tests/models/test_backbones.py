"""Every listed backbone: torchvision's parameter count, a forward pass at its input size."""

import pytest
import torch
import torchvision

from visionkit.errors import ConfigError
from visionkit.models import create_classifier, list_backbones

REQUIRED = ["alexnet", "vgg11", "vgg16", "vgg16_bn", "googlenet", "inception_v3", "resnet18",
            "resnet34", "resnet50", "resnet101", "resnext50_32x4d", "resnext101_32x8d"]
AUX_OFF = {"googlenet": {"aux_logits": False, "init_weights": True},
           "inception_v3": {"aux_logits": False, "init_weights": True}}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_required_names_are_listed():
    assert set(REQUIRED) <= set(list_backbones())


@pytest.mark.parametrize("name", REQUIRED)
def test_linear_head_matches_torchvision_parameter_count_and_runs(name):
    torch.manual_seed(0)
    model = create_classifier(name, num_classes=1000, head="linear").eval()
    reference = torchvision.models.get_model(name, weights=None, **AUX_OFF.get(name, {}))
    assert count(model) == count(reference)
    size = model.backbone.input_size
    assert size == (299 if name == "inception_v3" else 224)
    with torch.inference_mode():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()


def test_mlp_head_adds_one_hidden_layer():
    linear = create_classifier("resnet18", 7, head="linear")
    mlp = create_classifier("resnet18", 7, head="mlp", hidden_features=64, dropout=0.3)
    assert count(mlp) - count(linear) == (512 * 64 + 64) + (64 * 7 + 7) - (512 * 7 + 7)
    assert any(isinstance(m, torch.nn.Dropout) for m in mlp.head.modules())


def test_uniform_interface():
    model = create_classifier("vgg11", 3)
    assert model.backbone.out_features == 4096  # FC6/FC7 stay in the backbone
    groups = model.layer_groups()
    assert groups[-1] == [model.head]
    params = [p for g in groups for m in g for p in m.parameters()]
    assert len({id(p) for p in params}) == len(list(model.parameters()))
    assert model.backbone.mean == (0.485, 0.456, 0.406)


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown backbone 'resnet19'.*resnet18"):
        create_classifier("resnet19", 2)
