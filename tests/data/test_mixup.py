"""MixUp/CutMix: soft targets are proper distributions with the mixing weight of the pixels."""

import torch

from visionkit.data.mixup import MixupCutmix, smooth_one_hot


def test_smoothing():
    t = smooth_one_hot(torch.tensor([0, 2]), 4, 0.1)
    assert torch.allclose(t.sum(1), torch.ones(2))
    assert torch.isclose(t[0, 0], torch.tensor(0.925)) and torch.isclose(t[0, 1], torch.tensor(0.025))


def test_inactive_mixer_returns_images_unchanged():
    images = torch.randn(4, 3, 8, 8)
    out, targets = MixupCutmix(3)(images, torch.tensor([0, 1, 2, 0]))
    assert out is images and torch.equal(targets.argmax(1), torch.tensor([0, 1, 2, 0]))


def test_mixup_targets_follow_pixel_weights():
    images = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])
    mixer = MixupCutmix(2, mixup_alpha=1.0, seed=0)
    out, targets = mixer(images, torch.tensor([0, 1]))
    lam = out[0, 0, 0, 0].item()  # image 0 (zeros) mixed with image 1 (ones): value = 1 - lam
    assert torch.allclose(targets[0], torch.tensor([1 - lam, lam]), atol=1e-6)
    assert torch.allclose(targets.sum(1), torch.ones(2))


def test_cutmix_targets_equal_pasted_area():
    images = torch.stack([torch.zeros(3, 16, 16), torch.ones(3, 16, 16)])
    mixer = MixupCutmix(2, cutmix_alpha=1.0, seed=1)
    for _ in range(5):
        out, targets = mixer(images, torch.tensor([0, 1]))
        pasted = out[0, 0].mean().item()  # share of image 0 covered by image 1
        assert abs(targets[0, 1].item() - pasted) < 1e-6
        assert set(out.unique().tolist()) <= {0.0, 1.0}
