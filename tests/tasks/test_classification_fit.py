"""End to end through the command line: fit on a synthetic folder, logs, checkpoints, predict."""

import csv
import json
import logging
from pathlib import Path

import cv2
import pytest
import torch
import yaml

from visionkit.cli import main
from visionkit.data.synthetic import make_shapes_classification
from visionkit.errors import ConfigError
from visionkit.inference.classification import load_classifier, predict_topk
from visionkit.tasks.ema import EMA_UPDATES, TRAINED_WEIGHTS

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "classify" / "resnet18_finetune.yaml")
FAST = ["--model.backbone", "resnet18", "--data.image_size", "32", "--data.batch_size", "16",
        "--data.num_workers", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.log_every_n_steps", "1"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_classification(tmp_path_factory.mktemp("shapes"), n_train=16, n_val=8,
                                      size=40, seed=0)


def fit(root, out, *extra):
    args = ["classify", "fit", "--config", CONFIG,
            "--data.root", str(root), "--trainer.default_root_dir", str(out), *FAST, *extra]
    assert main(args) == 0
    return out / "version_0"


def read_metrics(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def accuracy(rows: list[dict]) -> float:
    """Share of predicted rows whose top class is the image's class folder."""
    return sum(Path(r["path"]).parent.name == r["top"][0]["class"] for r in rows) / len(rows)


def test_fit_writes_metrics_confusion_image_checkpoints_and_predicts(shapes, tmp_path, capsys):
    run = fit(shapes, tmp_path / "run", "--trainer.max_epochs", "2")
    rows = read_metrics(run)
    val_acc = [float(r["val_acc"]) for r in rows if r.get("val_acc")]
    assert len(val_acc) == 2
    assert f"best val_acc {max(val_acc):.4f}: {run / 'checkpoints' / 'best.ckpt'}" in \
        capsys.readouterr().out
    assert (run / "val_confusion_matrix.png").stat().st_size > 1000
    assert (run / "results.png").stat().st_size > 1000  # the curves of metrics.csv
    batch = cv2.imread(str(run / "train_batch0.jpg"))  # the first training batch, 16 images
    assert batch is not None and batch.shape == (1024, 1024, 3)
    best, last = run / "checkpoints" / "best.ckpt", run / "checkpoints" / "last.ckpt"
    assert best.is_file() and last.is_file()

    loaded = load_classifier(best)
    assert loaded.classes == ["circle", "square", "triangle"] and loaded.image_size == 32
    out = tmp_path / "pred.json"
    assert main(["classify", "predict", "--ckpt", str(best), str(shapes / "val"),
                 "--out", str(out), "--top-k", "2", "--sort-into", str(tmp_path / "sorted")]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 24 and all(len(r["top"]) == 2 for r in rows)
    assert all(r["top"][0]["prob"] >= r["top"][1]["prob"] for r in rows)
    # predict reproduces the best epoch's logged accuracy: same weights, same eval preprocessing.
    assert accuracy(rows) == pytest.approx(max(val_acc), abs=1e-6)
    assert sum(1 for _ in (tmp_path / "sorted").rglob("*.png")) == 24


def test_ema_with_bf16_and_accumulation_validates_and_saves_the_average(shapes, tmp_path):
    run = fit(shapes, tmp_path / "run", "--trainer.max_epochs", "2", "--model.ema_decay", "0.9",
              "--trainer.precision", "bf16-mixed", "--trainer.accumulate_grad_batches", "2",
              "--data.batch_size", "4")
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # 48 training images / batch 4 = 12 batches an epoch, 6 optimizer steps: one EMA update each
    assert last["global_step"] == 12 and last[EMA_UPDATES] == [12, 12]
    averaged, trained = last["state_dict"], last[TRAINED_WEIGHTS]
    name = "backbone.net.fc.weight" if "backbone.net.fc.weight" in trained else next(iter(trained))
    assert not torch.equal(averaged["model." + name], trained[name])
    # the logged val_acc is the averaged weights': predicting with best.ckpt gives it again
    val_acc = [float(r["val_acc"]) for r in read_metrics(run) if r.get("val_acc")]
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert TRAINED_WEIGHTS not in best  # weights-only: the average alone
    loaded = load_classifier(run / "checkpoints" / "best.ckpt")
    rows = predict_topk(loaded, sorted((shapes / "val").rglob("*.png")), top_k=1)
    assert accuracy(rows) == pytest.approx(max(val_acc), abs=1e-6)


def test_validate_uses_the_checkpoints_input_size_and_resume_refuses_another(shapes, tmp_path,
                                                                             caplog, capsys,
                                                                             monkeypatch):
    monkeypatch.chdir(shapes.parent)
    run = fit(Path(shapes.name), tmp_path / "run", "--trainer.max_epochs", "1")  # a relative root
    fitted = [float(r["val_acc"]) for r in read_metrics(run) if r.get("val_acc")]
    best = str(run / "checkpoints" / "best.ckpt")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["root"] == str(shapes.resolve())  # the saved config runs from anywhere
    caplog.set_level(logging.INFO)
    monkeypatch.chdir(tmp_path)
    assert main(["classify", "validate", "--config", str(run / "config.yaml"),
                 "--trainer.default_root_dir", "val", "--data.image_size", "48",
                 "--ckpt_path", best]) == 0
    validated = [float(r["val_acc"]) for r in read_metrics(tmp_path / "val" / "version_0")
                 if r.get("val_acc")]
    assert validated == pytest.approx(fitted, abs=1e-6)  # at 32 px, as trained, not at 48
    assert "image_size 48 -> 32" in caplog.text
    last = str(run / "checkpoints" / "last.ckpt")
    args = ["classify", "fit", "--config", CONFIG, "--data.root", str(shapes),
            "--trainer.default_root_dir", str(tmp_path / "resume"), *FAST, "--data.image_size", "48"]
    assert main([*args, "--ckpt_path", last]) == 1
    assert "trained at image_size 32, this run has 48" in capsys.readouterr().err
    # best.ckpt holds weights and record only (small); resuming takes last.ckpt
    assert "optimizer_states" not in torch.load(best, weights_only=True)
    assert main([*args, "--ckpt_path", best]) == 1
    assert "holds the weights only (best.ckpt does)" in capsys.readouterr().err


def test_seeded_runs_repeat(shapes, tmp_path):
    a = read_metrics(fit(shapes, tmp_path / "a", "--trainer.max_epochs", "1",
                         "--model.mixup_alpha", "0.2", "--model.cutmix_alpha", "1.0"))
    b = read_metrics(fit(shapes, tmp_path / "b", "--trainer.max_epochs", "1",
                         "--model.mixup_alpha", "0.2", "--model.cutmix_alpha", "1.0"))
    assert a == b


def test_gradual_unfreezing_thaws_one_group_per_epoch(shapes, tmp_path):
    run = fit(shapes, tmp_path / "g", "--trainer.max_epochs", "2", "--model.strategy", "gradual",
              "--model.group_lr_decay", "0.5")
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    first = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 1
    # After 2 epochs the head and layer4 trained; the stem and layer1..3 stayed at their init.
    from visionkit.models import create_classifier

    torch.manual_seed(0)
    init = create_classifier("resnet18", 3).state_dict()
    assert torch.equal(state["model.backbone.net.conv1.weight"], init["backbone.net.conv1.weight"])
    assert torch.equal(state["model.backbone.net.layer3.0.conv1.weight"],
                       init["backbone.net.layer3.0.conv1.weight"])
    assert not torch.equal(state["model.backbone.net.layer4.0.conv1.weight"],
                           init["backbone.net.layer4.0.conv1.weight"])


def test_predict_rejects_non_classification_checkpoint(tmp_path):
    bogus = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "visionkit": {"task": "detection"}}, bogus)
    with pytest.raises(ConfigError, match="not a classification checkpoint"):
        load_classifier(bogus)


def bad_folder(root):
    make_shapes_classification(root, n_train=4, n_val=2, size=32, seed=1)
    (root / "train" / "circle" / "corrupt.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (root / "train" / "hexagon").mkdir()
    from PIL import Image

    Image.new("L", (40, 30), 128).save(root / "train" / "square" / "gray.png")
    return root


def test_bad_folder_stops_with_the_culprit_named(tmp_path, capsys):
    root = bad_folder(tmp_path / "data")
    args = ["classify", "fit", "--config", CONFIG, "--data.root", str(root),
            "--trainer.default_root_dir", str(tmp_path / "run"), *FAST, "--trainer.max_epochs", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "hexagon: class folder has no image files" in err
    (root / "train" / "hexagon").rmdir()
    assert main(args) == 1
    assert "corrupt.jpg" in capsys.readouterr().err
    assert not list((tmp_path / "run").glob("version_*")), "a failed run leaves no run folder"


def test_skip_invalid_trains_and_reports(tmp_path):
    root = bad_folder(tmp_path / "data")
    run = fit(root, tmp_path / "run", "--trainer.max_epochs", "1", "--data.skip_invalid", "true")
    report = (run / "skipped_files.txt").read_text()
    assert "corrupt.jpg" in report and "hexagon" in report
    assert load_classifier(run / "checkpoints" / "last.ckpt").classes == ["circle", "square",
                                                                          "triangle"]


def test_compile_trains_the_compiled_model_and_keeps_checkpoint_keys(shapes, tmp_path, monkeypatch):
    compiled = []
    original = torch.nn.Module.compile

    def spy(module, *args, **kwargs):
        compiled.append(type(module).__name__)
        return original(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "compile", spy)
    run = fit(shapes, tmp_path / "run", "--trainer.max_epochs", "1", "--model.compile", "true")
    assert compiled == ["ImageClassifier"]
    val_acc = [float(r["val_acc"]) for r in read_metrics(run) if r.get("val_acc")]
    loaded = load_classifier(run / "checkpoints" / "last.ckpt")  # state dict keys without _orig_mod
    assert loaded.classes == ["circle", "square", "triangle"]
    # The eager model rebuilt from the compiled run's checkpoint scores what the run logged.
    rows = predict_topk(loaded, sorted((shapes / "val").rglob("*.png")))
    assert len(val_acc) == 1 and accuracy(rows) == pytest.approx(val_acc[0], abs=1e-6)
