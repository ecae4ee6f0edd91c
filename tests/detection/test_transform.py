"""DetectionTransform: torchvision's resize arithmetic, padding, and boxes mapped back."""

import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from visionkit.detection.transform import DetectionTransform, resize_boxes

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_matches_torchvision_generalized_rcnn_transform():
    ours = DetectionTransform(100, 160, MEAN, STD).eval()
    reference = GeneralizedRCNNTransform(100, 160, list(MEAN), list(STD)).eval()
    images = [torch.rand(3, 37, 91), torch.rand(3, 120, 50)]
    targets = [{"boxes": torch.tensor([[1.0, 2.0, 30.0, 20.0]]), "labels": torch.tensor([1])}] * 2
    batch, sizes, scaled = ours.train()(images, targets)
    expected, expected_targets = reference.train()(images, targets)
    assert torch.equal(batch, expected.tensors) and sizes == expected.image_sizes
    assert batch.shape[-2] % 32 == 0 and batch.shape[-1] % 32 == 0
    for a, b in zip(scaled, expected_targets, strict=True):
        assert torch.equal(a["boxes"], b["boxes"])


def test_postprocess_maps_boxes_to_the_original_size_and_fixed_size():
    transform = DetectionTransform(64, 64, MEAN, STD).eval()
    batch, sizes, _ = transform([torch.rand(3, 32, 48)])
    assert sizes == [(42, 64)]  # 32 * 64 / 48 rounded down, as F.interpolate does
    dets = transform.postprocess([{"boxes": torch.tensor([[0.0, 0.0, 64.0, 42.0]])}], sizes, [(32, 48)])
    torch.testing.assert_close(dets[0]["boxes"], torch.tensor([[0.0, 0.0, 48.0, 32.0]]))
    assert resize_boxes(torch.zeros(0, 4), (10, 10), (20, 20)).shape == (0, 4)
    fixed = DetectionTransform(64, 64, MEAN, STD, fixed_size=(40, 24)).eval()
    assert fixed([torch.rand(3, 50, 50)])[1] == [(24, 40)]


def test_multi_scale_training_picks_one_of_the_sizes():
    transform = DetectionTransform((32, 48, 64), 1000, MEAN, STD).train()
    torch.manual_seed(0)
    seen = {transform([torch.rand(3, 20, 20)])[1][0][0] for _ in range(30)}
    assert seen == {32, 48, 64}
    assert transform.eval()([torch.rand(3, 20, 20)])[1] == [(64, 64)]
