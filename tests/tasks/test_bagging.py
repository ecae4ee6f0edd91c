"""`visionkit classify bag`: members on bootstrap resamples (recorded), scored alone and together;
the data module's resample and its validation decoding."""

import json
from collections import Counter

import pytest
import torch

from tests.tasks.test_classification_fit import CONFIG, FAST
from visionkit.cli import main
from visionkit.data.synthetic import make_shapes_classification
from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_classification(tmp_path_factory.mktemp("shapes"), n_train=8, n_val=4,
                                      size=40, seed=0)


def test_bootstrap_resample_is_seeded_same_sized_and_with_replacement(shapes):
    def train_paths(seed):
        dm = ImageFolderDataModule(str(shapes), image_size=32, num_workers=0, bootstrap_seed=seed)
        dm.setup()
        return [p for p, _ in dm.train_set.samples]

    plain = ImageFolderDataModule(str(shapes), image_size=32, num_workers=0)
    plain.setup()
    first, again, other = train_paths(0), train_paths(0), train_paths(1)
    assert first == again != other and len(first) == len(plain.train_set) == 24
    assert max(Counter(first).values()) > 1 and set(first) <= {p for p, _ in plain.train_set.samples}


def test_bag_trains_members_and_scores_their_ensemble(shapes, tmp_path, capsys):
    out = tmp_path / "bag"
    assert main(["classify", "bag", "--n", "2", "--out", str(out), "--config", CONFIG,
                 "--data.root", str(shapes), *FAST, "--trainer.max_epochs", "1"]) == 0
    report = json.loads((out / "bag.json").read_text())
    assert [m["bootstrap_seed"] for m in report["members"]] == [0, 1]
    for seed, member in enumerate(report["members"]):
        checkpoint = torch.load(member["checkpoint"], weights_only=True)
        assert checkpoint["datamodule_hyper_parameters"]["bootstrap_seed"] == seed
        assert member["checkpoint"].startswith(str(out / f"member_{seed}"))
    # each member scored again from its checkpoint: the val_acc its run logged
    assert report["member_acc"] == [m["best_val_acc"] for m in report["members"]]
    assert report["member_mean_acc"] == round(sum(report["member_acc"]) / 2, 4)
    assert 0 <= report["ensemble_acc"] <= 1
    assert f"soft-vote ensemble val_acc {report['ensemble_acc']:.4f}" in capsys.readouterr().out


def test_validation_reads_large_jpegs_as_predict_does(tmp_path):
    """Training may decode a large JPEG at reduced scale; validation decodes it whole, exactly
    as `classify predict` preprocesses it, so a checkpoint predicts the accuracy its run logged."""
    import numpy as np
    from PIL import Image

    from visionkit.data.images import read_image
    from visionkit.data.transforms import classification_eval_transform

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            Image.fromarray(rng.integers(0, 255, (800, 1000, 3), dtype=np.uint8)).save(folder / "x.jpg")
    dm = ImageFolderDataModule(str(tmp_path), image_size=64, num_workers=0)
    dm.setup()
    path = dm.val_set.samples[0][0]
    mean, std = dm.normalization()
    expected = classification_eval_transform(64, mean, std, crop_fraction=dm.crop_fraction)(
        image=read_image(path))["image"]
    assert torch.equal(dm.val_set[0]["image"], expected)
    assert dm.train_set.decode_min_side == 128  # training keeps the fast reduced-scale decode
