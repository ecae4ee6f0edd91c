"""ProposalCache: computed once per image and settings, atomic, recomputed when unreadable; proposals
follow the training augmentation like the boxes."""

import json

import numpy as np
import pytest

from visionkit.data.coco_detection import CocoDetection
from visionkit.data.detection_transforms import apply_detection_transform, detection_train_transform
from visionkit.data.proposal_cache import ProposalCache, precompute_proposals
from visionkit.data.synthetic_detection import make_shapes_detection


class Counting:
    """A proposal generator returning fixed boxes, counting its calls."""

    def __init__(self, scale=1.0):
        self.calls = 0
        self.settings = {"scale": scale}
        self.scale = scale

    def __call__(self, image):
        self.calls += 1
        h, w = image.shape[:2]
        return np.array([[0, 0, w * self.scale, h * self.scale], [1, 2, 10, 12]], np.float32)


def test_computed_once_then_read(tmp_path):
    root = make_shapes_detection(tmp_path / "d", n_train=3, n_val=1, size=48)
    dataset = CocoDetection(root / "train.json", root)
    generator = Counting()
    cache = ProposalCache(tmp_path / "cache", generator)
    counts = precompute_proposals(dataset, cache, progress=False)
    assert counts["computed"] == 3 and generator.calls == 3
    again = precompute_proposals(dataset, ProposalCache(tmp_path / "cache", generator), progress=False)
    assert again["computed"] == 0 and again["cached_before"] == 3 and generator.calls == 3
    record = dataset.records[0]
    np.testing.assert_array_equal(cache(record), [[0, 0, 48, 48], [1, 2, 10, 12]])
    assert generator.calls == 3
    assert json.loads((cache.folder / "settings.json").read_text()) == {"method": "Counting", "scale": 1.0}
    assert not list(cache.folder.glob("*.tmp*"))  # atomic writes leave nothing behind

    other = ProposalCache(tmp_path / "cache", Counting(scale=0.5))
    assert other.folder != cache.folder and other.load(record) is None

    cache.path(record).write_bytes(b"not a numpy file")  # a torn or foreign file is not trusted
    np.testing.assert_array_equal(cache(record)[0], [0, 0, 48, 48])
    assert generator.calls == 4 and cache.load(record) is not None


def test_shards_fill_the_cache_together_each_image_once(tmp_path):
    # DDP ranks each compute their share into a shared cache folder.
    root = make_shapes_detection(tmp_path / "d", n_train=5, n_val=1, size=48)
    dataset = CocoDetection(root / "train.json", root)
    generator = Counting()
    counts = [precompute_proposals(dataset, ProposalCache(tmp_path / "cache", generator),
                                   progress=False, shard=(rank, 2)) for rank in (0, 1)]
    assert [(c["images"], c["computed"]) for c in counts] == [(3, 3), (2, 2)]
    assert generator.calls == 5
    assert precompute_proposals(dataset, ProposalCache(tmp_path / "cache", generator),
                                progress=False)["computed"] == 0
    with pytest.raises(ValueError, match="shard must be"):
        precompute_proposals(dataset, ProposalCache(tmp_path / "cache", generator), shard=(2, 2))


def test_dataset_items_carry_proposals_through_the_flip(tmp_path):
    root = make_shapes_detection(tmp_path / "d", n_train=2, n_val=1, size=48)
    cache = ProposalCache(tmp_path / "cache", Counting())
    flip = detection_train_transform(hflip=1.0, color_jitter=0.0, seed=0)
    dataset = CocoDetection(root / "train.json", root,
                            lambda image, target: apply_detection_transform(flip, image, target),
                            proposals=cache)
    _, target = dataset[0]
    np.testing.assert_allclose(target["proposals"].numpy(), [[0, 0, 48, 48], [38, 2, 47, 12]])
    plain = CocoDetection(root / "train.json", root)
    _, original = plain[0]
    assert "proposals" not in original
    flipped = original["boxes"].numpy().copy()
    flipped[:, [0, 2]] = 48 - flipped[:, [2, 0]]
    np.testing.assert_allclose(target["boxes"].numpy(), flipped, atol=1e-4)
    assert target["labels"].tolist() == original["labels"].tolist()


def test_relative_and_absolute_image_roots_share_entries(tmp_path, monkeypatch):
    root = make_shapes_detection(tmp_path / "d", n_train=1, n_val=1, size=32)
    generator = Counting()
    cache = ProposalCache(tmp_path / "cache", generator)
    precompute_proposals(CocoDetection(root / "train.json", root), cache, progress=False)
    monkeypatch.chdir(tmp_path)
    relative = CocoDetection("d/train.json", "d")
    assert precompute_proposals(relative, cache, progress=False)["computed"] == 0
    assert generator.calls == 1
