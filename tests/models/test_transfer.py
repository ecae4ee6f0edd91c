"""Freezing, frozen BatchNorm, and per-group parameter groups."""

import pytest
import torch

from visionkit.models import (
    create_classifier,
    modules_outside,
    parameter_groups,
    scaled_parameter_groups,
    set_group_trainable,
)
from visionkit.models.transfer import trainable_deepest


def test_linear_probe_freezes_backbone_and_keeps_its_batchnorm_in_eval():
    model = create_classifier("resnet18", 3)
    groups = model.layer_groups()
    set_group_trainable(groups, trainable_deepest(groups, 1))
    model.train()
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert not model.backbone.net.bn1.training and model.head.training
    before = model.backbone.net.bn1.running_mean.clone()
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    assert torch.equal(before, model.backbone.net.bn1.running_mean)
    assert model.backbone.net.conv1.weight.grad is None


def test_unfreezing_the_deepest_groups():
    model = create_classifier("resnet18", 3)
    groups = model.layer_groups()
    set_group_trainable(groups, trainable_deepest(groups, 3))
    model.train()
    assert model.backbone.net.layer4.training and model.backbone.net.layer3.training
    assert not model.backbone.net.layer2.training
    assert not any(p.requires_grad for p in model.backbone.net.layer2.parameters())


def test_parameter_groups_cover_every_parameter_once_with_decayed_lrs():
    model = create_classifier("resnet18", 3)
    groups = parameter_groups(model.layer_groups(), lr=0.1, weight_decay=1e-4, group_lr_decay=0.5)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    head_fc = {id(model.head.fc.weight), id(model.head.fc.bias)}
    stem = {id(model.backbone.net.conv1.weight)}
    for g in groups:
        params = {id(p) for p in g["params"]}
        if params & head_fc:
            assert g["lr"] == 0.1
        if params & stem:
            assert g["lr"] == 0.1 * 0.5 ** 5  # five backbone groups below the head
    bn_and_bias = {id(model.backbone.net.bn1.weight), id(model.head.fc.bias)}
    for g in groups:
        if {id(p) for p in g["params"]} & bn_and_bias:
            assert g["weight_decay"] == 0.0


def test_modules_outside_an_inner_module_hold_the_other_parameters_once():
    model = create_classifier("resnet18", 3)
    inner = model.backbone.net.layer2
    outside = modules_outside(model, inner)
    ids = [id(p) for m in [inner, *outside] for p in m.parameters()]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert not any(m is inner or any(s is inner for s in m.modules()) for m in outside)
    holder = torch.nn.Linear(2, 2)
    holder.inner = torch.nn.Linear(2, 2)  # parameters of its own beside the inner module
    with pytest.raises(ValueError, match="holds parameters of its own"):
        modules_outside(holder, holder.inner)
    with pytest.raises(ValueError, match="not a submodule"):
        modules_outside(model, torch.nn.Linear(2, 2))


def test_scaled_parameter_groups_scale_the_inner_module_only():
    model = create_classifier("resnet18", 3)
    inner = {id(p) for p in model.backbone.net.layer2.parameters()}
    groups = scaled_parameter_groups(model, model.backbone.net.layer2, 0.1, 1e-4, 3.0)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    for g in groups:
        assert all(g["lr"] == pytest.approx(0.3 if id(p) in inner else 0.1) for p in g["params"])
    assert {g["lr"] for g in scaled_parameter_groups(model, model.backbone, 0.1, 1e-4, 1.0)} == {0.1}
