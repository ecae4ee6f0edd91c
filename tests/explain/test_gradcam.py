"""Grad-CAM(++): CAM equivalence, default layers, placement on the input, detectors, no state left."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from visionkit.errors import ConfigError
from visionkit.explain.gradcam import box_score, class_score, grad_cam, place_on_input
from visionkit.explain.receptive_field import AxisField
from visionkit.models import create_classifier, set_group_trainable

from ._helpers import function_modes, hook_count, model_state, small_detector


def gap_linear_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4))


def test_gradcam_of_a_gap_linear_model_is_its_class_activation_map():
    """For conv → GAP → linear, Grad-CAM at the conv output is CAM: relu(Σ_c w_kc·A_c), scaled."""
    model, x = gap_linear_model(), torch.rand(2, 3, 12, 12)
    result = grad_cam(model, x, class_score([1, 3]), layer="1")
    activations = model[1](model[0](x)).detach()
    weights = model[4].weight.detach()[[1, 3]]
    cam = torch.einsum("bc,bchw->bhw", weights, activations).clamp(min=0)
    expected = cam / cam.flatten(1).amax(1)[:, None, None]
    assert result.layer == "1"
    torch.testing.assert_close(result.cells, expected)
    torch.testing.assert_close(result.heatmaps, expected)  # stride 1, start 0.5: cells are pixels


def test_gradcam_plus_plus_keeps_only_positive_gradients():
    model, x = gap_linear_model(), torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        model[4].weight[0] = -model[4].weight[0].abs()  # every channel votes against class 0
    assert grad_cam(model, x, class_score(0), layer="1", method="gradcam++").cells.abs().max() == 0
    both = [grad_cam(model, x, class_score(2), layer="1", method=m).cells for m in ("gradcam", "gradcam++")]
    for cells in both:
        assert cells.min() >= 0 and cells.max() == pytest.approx(1.0)


@pytest.mark.parametrize(("name", "layer"), [("resnet18", "backbone.net.layer4"),
                                             ("googlenet", "backbone.net.inception5b")])
def test_default_layer_is_the_last_conv_block(name, layer):
    result = grad_cam(create_classifier(name, 3), torch.rand(1, 3, 64, 64), class_score())
    assert result.layer == layer
    assert result.heatmaps.shape == (1, 64, 64) and result.heatmaps.max() == pytest.approx(1.0)


def test_cells_are_placed_at_their_receptive_field_centres():
    cells = torch.tensor([[[0.0, 1.0], [0.5, 0.25]]])
    field = (AxisField(20, 16, 8.5), AxisField(20, 16, 8.5))  # centres at pixels 8 and 24
    placed = place_on_input(cells, field, (32, 32))
    assert placed[0, 8, 24] == 1.0 and placed[0, 24, 8] == 0.5 and placed[0, 24, 24] == 0.25
    assert placed[0, 0, 31] == 1.0 and placed[0, 16, 16] == pytest.approx(cells.mean())


def test_no_state_is_left_behind_even_when_the_score_fails():
    model = create_classifier("resnet18", 3).train()
    set_group_trainable(model.layer_groups(), [False, False, True, True, True, True])
    before, hooks = model_state(model), hook_count(model)
    for method in ("gradcam", "gradcam++"):
        grad_cam(model, torch.rand(2, 3, 48, 48), class_score([0, 2]), method=method)
        assert model_state(model) == before and hook_count(model) == hooks and function_modes() == 0

    def broken(logits):
        raise RuntimeError("score failed")

    with pytest.raises(RuntimeError, match="score failed"):
        grad_cam(model, torch.rand(1, 3, 48, 48), broken)
    assert model_state(model) == before and hook_count(model) == hooks and function_modes() == 0


def test_detector_box_heatmap_lies_on_the_input_image():
    model = small_detector().train()
    before, hooks = model_state(model), hook_count(model)
    image = torch.rand(3, 60, 90)  # resized to 64 x 96 and padded inside the detector
    result = grad_cam(model, [image], box_score(0))
    assert result.layer.startswith("backbone.fpn.")
    assert result.heatmaps.shape == (1, 60, 90) and result.heatmaps.max() == pytest.approx(1.0)
    assert result.output[0]["boxes"].shape[1] == 4
    assert model_state(model) == before and hook_count(model) == hooks and function_modes() == 0


def test_bad_arguments_are_config_errors():
    model, x = gap_linear_model(), torch.rand(1, 3, 8, 8)
    with pytest.raises(ConfigError, match="unknown method"):
        grad_cam(model, x, class_score(), method="cam")
    with pytest.raises(ConfigError, match="no layer"):
        grad_cam(model, x, class_score(), layer="body.7")
    with pytest.raises(ConfigError, match="no feature map"):
        grad_cam(model, x, class_score(), layer="4")
