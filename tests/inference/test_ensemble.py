"""Classifier ensembles and flip TTA: the combined scores are the members' own, combined."""

from __future__ import annotations

import json

import pytest
import torch

from visionkit.cli import main
from visionkit.commands.arguments import split_checkpoints
from visionkit.data.images import read_image
from visionkit.data.synthetic import make_shapes_classification
from visionkit.errors import ConfigError
from visionkit.inference.classification import load_classifier, predict_topk
from visionkit.inference.ensemble import check_members, combine, ensemble_scores
from visionkit.tasks.checkpoint_io import save_task_checkpoint
from visionkit.tasks.classification import ClassificationTask

CLASSES = ["circle", "square", "triangle"]


def checkpoint(path, seed: int, size: int = 32, classes=CLASSES):
    torch.manual_seed(seed)  # untrained: different seeds give different models
    task = ClassificationTask("resnet18", len(classes), class_names=list(classes), image_size=size)
    return save_task_checkpoint(task, path)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = make_shapes_classification(tmp_path_factory.mktemp("shapes"), CLASSES, n_train=0,
                                      n_val=2, size=48, seed=3)
    return sorted((root / "val").rglob("*.png"))


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpts")
    return [checkpoint(folder / "a.ckpt", 0), checkpoint(folder / "b.ckpt", 1),
            checkpoint(folder / "c.ckpt", 2, size=40)]  # another input size: its own preprocessing


def own_probabilities(ckpt, paths, flip: bool = False) -> torch.Tensor:
    """A member's probabilities computed alone, image by image, with its own preprocessing."""
    loaded = load_classifier(ckpt)
    transform = loaded.eval_transform()
    batch = torch.stack([transform(image=read_image(p))["image"] for p in paths])
    with torch.no_grad():
        probs = loaded.model(batch).softmax(1)
        if flip:
            probs = (probs + loaded.model(batch.flip(-1)).softmax(1)) / 2
    return probs


def test_soft_vote_is_the_mean_of_each_members_probabilities(ckpts, images):
    members = [load_classifier(c) for c in ckpts]
    kept, scores = ensemble_scores(members, images, batch_size=4)
    assert kept == [str(p) for p in images]
    expected = torch.stack([own_probabilities(c, images) for c in ckpts]).mean(0)
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=0)


def test_flip_tta_averages_each_member_over_the_mirror_image(ckpts, images):
    _, scores = ensemble_scores([load_classifier(ckpts[0])], images, tta=True)
    torch.testing.assert_close(scores, own_probabilities(ckpts[0], images, flip=True), atol=1e-5, rtol=0)
    _, plain = ensemble_scores([load_classifier(ckpts[0])], images)
    assert not torch.allclose(scores, plain)


def test_majority_vote_counts_top_classes_and_breaks_ties_by_mean_probability():
    probabilities = torch.tensor([  # [M=3, N=2, K=3]
        [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]],
        [[0.2, 0.7, 0.1], [0.1, 0.2, 0.7]],
        [[0.5, 0.4, 0.1], [0.3, 0.6, 0.1]],
    ])
    scores = combine(probabilities, "majority")
    votes = torch.tensor([[2, 1, 0], [1, 1, 1]]) / 3  # image 1: two for class 0; image 2: a tie
    torch.testing.assert_close(scores, votes + probabilities.mean(0) / 6)  # the mean breaks ties
    assert scores.argmax(1).tolist() == [0, 1]  # image 2: class 1 has the best mean (0.4)
    torch.testing.assert_close(combine(probabilities, "soft"), probabilities.mean(0))
    with pytest.raises(ConfigError, match="unknown vote"):
        combine(probabilities, "hard")


def test_one_member_gives_what_predict_topk_gives(ckpts, images):
    loaded = load_classifier(ckpts[0])
    rows = predict_topk(loaded, images, top_k=3)
    _, scores = ensemble_scores([loaded], images)
    got = torch.tensor([[hit["prob"] for hit in row["top"]] for row in rows])
    torch.testing.assert_close(got, scores.sort(1, descending=True).values, atol=1e-7, rtol=0)


def test_members_with_other_classes_are_refused_by_name(tmp_path, ckpts):
    other = checkpoint(tmp_path / "other.ckpt", 0, classes=["a", "b", "c"])
    with pytest.raises(ConfigError, match="other.ckpt: classes .* differ from .*a.ckpt"):
        check_members([load_classifier(ckpts[0]), load_classifier(other)], [str(ckpts[0]), str(other)])


def test_cli_predicts_with_several_checkpoints(ckpts, images, tmp_path, capsys):
    assert split_checkpoints(["a.ckpt", "b.onnx", "photos/", "x.png"]) == (["a.ckpt", "b.onnx"],
                                                                        ["photos/", "x.png"])
    out = tmp_path / "pred.json"
    folder = str(images[0].parent.parent)
    assert main(["classify", "predict", "--ckpt", *map(str, ckpts), folder, "--out", str(out),
                 "--top-k", "3", "--vote", "majority", "--tta"]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == len(images) and all(len(r["top"]) == 3 for r in rows)
    members = [load_classifier(c) for c in ckpts]
    _, scores = ensemble_scores(members, sorted(images), vote="majority", tta=True)
    assert [r["top"][0]["prob"] for r in sorted(rows, key=lambda r: r["path"])] == pytest.approx(
        scores.max(1).values.tolist(), abs=1e-6)
