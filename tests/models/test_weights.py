"""Pretrained weights: torchvision files load unchanged, offline misses fail loudly."""

import argparse
import ast
from pathlib import Path

import pytest
import torch
import torchvision

import visionkit
from visionkit.errors import WeightsError
from visionkit.models import create_classifier
from visionkit.models.weights import REPO_WEIGHTS, load_checkpoint_file, torchvision_weights_url


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("VISIONKIT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def save_torchvision(name, folder, **kwargs):
    torch.manual_seed(1)
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    filename = torchvision_weights_url(name).rsplit("/", 1)[1]
    torch.save(model.state_dict(), folder / filename)
    return model


def test_imagenet_weights_from_weights_dir_reproduce_torchvision(weights_dir):
    reference = save_torchvision("resnet18", weights_dir)
    ours = create_classifier("resnet18", 1000, pretrained="imagenet").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(ours(x), reference(x), atol=1e-5)


def test_fine_tuning_keeps_backbone_and_reinitialises_head(weights_dir):
    reference = save_torchvision("resnet18", weights_dir)
    ours = create_classifier("resnet18", 5, pretrained="imagenet")
    assert torch.equal(ours.backbone.net.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert ours.head.fc.weight.shape == (5, 512)


def test_googlenet_half_normalisation_equals_torchvision_transform_input(weights_dir):
    reference = save_torchvision("googlenet", weights_dir, aux_logits=True, init_weights=True,
                                 transform_input=True)
    ours = create_classifier("googlenet", 1000, pretrained="imagenet").eval()
    rgb = torch.rand(2, 3, 96, 96)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.inference_mode():
        expected = reference((rgb - mean) / std)
        got = ours((rgb - 0.5) / 0.5)
    assert torch.allclose(got, expected, atol=1e-4)


def test_offline_missing_weights_name_the_file_and_folder(weights_dir):
    with pytest.raises(WeightsError) as err:
        create_classifier("resnet50", 3, pretrained="imagenet")
    message = str(err.value)
    assert torchvision_weights_url("resnet50").rsplit("/", 1)[1] in message
    assert "weights" in message and "VISIONKIT_OFFLINE" in message


def test_torch_home_cache_is_used(weights_dir):
    hub = weights_dir / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    reference = save_torchvision("alexnet", hub)
    ours = create_classifier("alexnet", 1000, pretrained="imagenet")
    assert torch.equal(ours.backbone.net.features[0].weight, reference.features[0].weight)


def test_path_to_visionkit_checkpoint_loads_backbone(weights_dir):
    source = create_classifier("resnet18", 4)
    ckpt = weights_dir / "task_a.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()},
                "visionkit": {"task": "classification"}}, ckpt)
    target = create_classifier("resnet18", 4, pretrained=ckpt)
    for a, b in zip(source.state_dict().values(), target.state_dict().values()):
        assert torch.equal(a, b)
    other = create_classifier("resnet18", 9, pretrained=str(ckpt))
    assert torch.equal(other.backbone.net.conv1.weight, source.backbone.net.conv1.weight)


def test_weights_of_another_architecture_are_rejected_with_keys(weights_dir):
    path = weights_dir / "r34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(WeightsError, match=r"r34.pth.*do not fit backbone 'resnet18'.*unexpected"):
        create_classifier("resnet18", 2, pretrained=path)


def test_missing_or_garbage_files(weights_dir):
    with pytest.raises(WeightsError, match="neither 'imagenet' nor an existing file"):
        create_classifier("resnet18", 2, pretrained=weights_dir / "nope.pth")
    junk = weights_dir / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth: not a readable PyTorch weights file"):
        create_classifier("resnet18", 2, pretrained=junk)


def test_checkpoints_are_unpickled_with_tensors_only(tmp_path):
    path = tmp_path / "payload.ckpt"
    torch.save({"state_dict": {}, "payload": argparse.Namespace(run="anything")}, path)
    with pytest.raises(WeightsError, match="payload.ckpt: not a readable PyTorch weights file"):
        load_checkpoint_file(path)


def test_every_torch_load_in_visionkit_is_weights_only():
    loaders = {("torch", "load"), ("torch.hub", "load_state_dict_from_url")}
    for path in sorted(Path(visionkit.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if (ast.unparse(node.func.value), node.func.attr) in loaders:
                flag = {k.arg: k.value for k in node.keywords}.get("weights_only")
                assert isinstance(flag, ast.Constant) and flag.value is True, f"{path}:{node.lineno}"


def test_offline_message_from_the_checkout_root(tmp_path, monkeypatch):
    # run from the repository: ./weights is the repo's weights folder, listed once
    monkeypatch.delenv("VISIONKIT_WEIGHTS", raising=False)
    monkeypatch.setenv("VISIONKIT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.chdir(REPO_WEIGHTS.parent)
    with pytest.raises(WeightsError, match=r"put resnet50-\w+\.pth in one of .*weights"):
        create_classifier("resnet50", 3, pretrained="imagenet")
