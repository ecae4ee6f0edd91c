"""`visionkit classify bag`: members on bootstrap resamples (recorded), scored alone and together."""

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
