"""Layer summary: totals against torch's FLOP counter and parameter counts, published receptive fields."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from visionkit.explain.summary import layer_summary
from visionkit.models import create_classifier, set_group_trainable

from ._helpers import function_modes, hook_count, model_state, small_detector

MODELS = ("resnet18", "vgg16", "googlenet", "alexnet")


def flop_counter_macs(model, example) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    return counter.get_total_flops() / 2


@pytest.fixture(scope="module")
def summaries():
    """Each model at 224 px on the meta device (shapes only: fast, no memory)."""
    out = {}
    for name in MODELS:
        with torch.device("meta"):
            model = create_classifier(name, 1000).eval()
            x = torch.zeros(1, 3, 224, 224)
        out[name] = (model, layer_summary(model, x), flop_counter_macs(model, x))
    return out


def rows(summary, name):
    return [r.to_dict() for r in summary.layers if r.name == name]


@pytest.mark.parametrize("name", MODELS)
def test_totals_match_flop_counter_and_parameter_count(summaries, name):
    model, summary, reference_macs = summaries[name]
    totals = summary.totals()
    assert totals["macs"] == pytest.approx(reference_macs, rel=0.01)
    assert totals["params"] == sum(p.numel() for p in model.parameters())
    assert summary.unused_params == 0
    first = summary.layers[0].to_dict()
    assert first["type"] == "Conv2d" and first["output_shape"][:2] == [1, 64]
    assert totals["activation_bytes"] == sum(4 * torch.Size(s).numel() for r in summary.layers
                                             for s in r.output_shapes)


def test_published_receptive_fields(summaries):
    vgg, alexnet, resnet = (summaries[n][1] for n in ("vgg16", "alexnet", "resnet18"))
    conv5_3, pool5 = rows(vgg, "backbone.net.features.28")[0], rows(vgg, "backbone.net.features.30")[0]
    assert (conv5_3["rf"], conv5_3["jump"], pool5["rf"], pool5["jump"]) == (196, 16, 212, 32)
    conv5, pool = rows(alexnet, "backbone.net.features.10")[0], rows(alexnet, "backbone.net.features.12")[0]
    assert (conv5["rf"], conv5["jump"], pool["rf"], pool["jump"]) == (163, 16, 195, 32)
    assert rows(resnet, "backbone.net.layer4.1.relu")[-1]["rf"] == 435  # after the residual add


def test_real_tensors_give_the_meta_summary_and_no_state_is_left_behind():
    model = create_classifier("resnet18", 4).train()
    set_group_trainable(model.layer_groups(), [False, False, True, True, True, True])
    before, hooks = model_state(model), hook_count(model)
    real = layer_summary(model, torch.rand(1, 3, 48, 48))
    assert model_state(model) == before and hook_count(model) == hooks and function_modes() == 0
    meta = layer_summary(model.to("meta"), torch.zeros(1, 3, 48, 48, device="meta"))
    assert real.to_dict() == meta.to_dict()


def test_detector_summary_counts_backbone_and_heads():
    model = small_detector()
    image = [torch.rand(3, 64, 96)]
    summary = layer_summary(model, image)
    totals = summary.totals()
    assert totals["macs"] == pytest.approx(flop_counter_macs(model.eval(), image), rel=0.01)
    assert totals["params"] == sum(p.numel() for p in model.parameters())
    assert rows(summary, "transform")[0]["output_shape"] == [1, 3, 64, 96]
    stem = rows(summary, "backbone.body.0.0")[0]
    assert (stem["rf"], stem["jump"], stem["start"]) == (3, 2, 0.5)
    rpn_conv = rows(summary, "rpn.head.conv.0.0")  # one call per feature level, weights shared
    assert len(rpn_conv) == 3 and rpn_conv[0]["params"] > 0 and all(r["params"] == 0 for r in rpn_conv[1:])
    assert [r["rf"] for r in rpn_conv] == sorted(r["rf"] for r in rpn_conv)  # coarser levels see more
    assert rows(summary, "roi_heads.box_head.fc6")[0]["rf"] is None  # RoI pooling: no fixed field
