"""`visionkit detect`: fit on a tiny synthetic COCO set, mAP logged, checkpoints, validate/test."""

import csv
import json

import cv2
import pytest
import torch

from tests.tiny import tiny_faster_rcnn, tiny_faster_rcnn_args
from visionkit.checkpoint_record import read_record, write_record
from visionkit.cli import main
from visionkit.commands.detect import with_cuda_amp
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.detection import create_detector, list_detectors
from visionkit.errors import ConfigError
from visionkit.tasks.cli import LIGHTNING_VERSION_KEY, check_checkpoint_fits
from visionkit.tasks.detection import DetectionTask, warmup_multistep
from visionkit.tasks.ema import TRAINED_WEIGHTS

FAST = ["--data.batch_size", "4", "--data.num_workers", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.log_every_n_steps", "1",
        "--trainer.max_epochs", "1", "--trainer.num_sanity_val_steps", "0",
        *tiny_faster_rcnn_args()]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = make_shapes_detection(tmp_path_factory.mktemp("det"), ("circle", "star"), n_train=8,
                                 n_val=4, size=64, max_objects=2)
    # One invalid record in val: reported in the run's skipped_files.txt, not silently used.
    val = json.loads((root / "val.json").read_text())
    val["annotations"].append({"id": 999, "image_id": val["images"][0]["id"], "bbox": [1, 1, 0, 4],
                               "category_id": 1})
    (root / "val_bad.json").write_text(json.dumps(val))
    return root


def detect(command, root, out, *extra):
    args = ["detect", command, "--config", "configs/detect/fasterrcnn_resnet18_fpn.yaml",
            "--data.train_json", str(root / "train.json"), "--data.val_json",
            str(root / "val_bad.json"), "--data.image_root", str(root),
            "--trainer.default_root_dir", str(out), *FAST, *extra]
    assert main(args) == 0
    return out / "version_0"


def test_fit_logs_coco_map_writes_checkpoints_and_validates(shapes, tmp_path):
    # with weight EMA: validation, best.ckpt and the validate command all use the averaged weights
    run = detect("fit", shapes, tmp_path / "run", "--model.ema_decay", "0.9")
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = [r for r in rows if r.get("val_map")]
    assert len(logged) == 1
    assert any(r.get("train_loss_classifier") for r in rows)
    assert "annotation id 999" in (run / "skipped_files.txt").read_text()
    batch = cv2.imread(str(run / "train_batch0.jpg"))  # the first training batch, boxes drawn
    assert batch is not None and batch.shape == (512, 512, 3)  # batch of 4: a 2 x 2 grid
    assert (run / "results.png").stat().st_size > 1000
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    trained = last[TRAINED_WEIGHTS]["rpn.head.cls_logits.weight"]
    assert not torch.equal(trained, last["state_dict"]["model.rpn.head.cls_logits.weight"])

    best = run / "checkpoints" / "best.ckpt"
    assert best.is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    ckpt = torch.load(best, weights_only=True)
    # only this family's options are saved: `--ckpt_path` applies the saved hyperparameters, so
    # another family's saved defaults would read as set (and refuse) once a default changes
    assert ckpt["hyper_parameters"]["faster_rcnn"]["min_size"] == 64
    assert ckpt["hyper_parameters"]["fast_rcnn"] is None and ckpt["hyper_parameters"]["rcnn"] is None
    record = read_record(ckpt, best, "detection")
    assert record.classes == ["circle", "star"] and record.category_ids == [1, 5]
    assert record.model["name"] == "fasterrcnn_resnet18_fpn" and record.num_classes == 3
    assert record.model["min_size"] == 64 and record.image_hw == [64, 64]  # the training images'
    # The checkpoint alone rebuilds the model (builder arguments + weights).
    model = create_detector(**record.model, pretrained=best)
    assert torch.equal(model.state_dict()["rpn.head.cls_logits.weight"],
                       ckpt["state_dict"]["model.rpn.head.cls_logits.weight"])

    val_run = detect("validate", shapes, tmp_path / "val", "--ckpt_path", str(best))
    with open(val_run / "metrics.csv") as f:
        validated = [r for r in csv.DictReader(f) if r.get("val_map50")]
    # Validating the checkpoint alone reproduces the fit's figures (same weights, data, evaluator).
    for key in ("val_map", "val_map50", "val_map75"):
        assert float(validated[-1][key]) == pytest.approx(float(logged[0][key]), abs=1e-9), key
    test_run = detect("test", shapes, tmp_path / "test", "--ckpt_path", str(best),
                      "--data.test_json", str(shapes / "val.json"))
    with open(test_run / "metrics.csv") as f:
        assert any(r.get("test_map") for r in csv.DictReader(f))


def test_warmup_then_steps():
    factor = warmup_multistep(10, [20, 30], 0.1, warmup_factor=0.001)
    assert factor(0) == pytest.approx(0.001) and factor(5) == pytest.approx(0.5005)
    assert factor(10) == 1.0 and factor(20) == pytest.approx(0.1) and factor(35) == pytest.approx(0.01)
    assert warmup_multistep(0, [], 0.1)(0) == 1.0


def test_cuda_amp_default_is_overridable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert with_cuda_amp(["fit", "--config", "c.yaml"]) == [
        "fit", "--trainer.precision", "16-mixed", "--config", "c.yaml"]
    assert with_cuda_amp(["fit", "--trainer.precision=32"]) == ["fit", "--trainer.precision=32"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert with_cuda_amp(["fit"]) == ["fit"]


def test_loader_workers_draw_different_augmentations(shapes):
    import lightning as L

    from visionkit.tasks.detection_datamodule import DetectionDataModule

    L.seed_everything(0)
    dm = DetectionDataModule(str(shapes / "train.json"), str(shapes / "val.json"), str(shapes),
                             batch_size=1, num_workers=2, color_jitter=0.0)
    dm.setup("fit")
    dm.train_set.records = [next(r for r in dm.train_set.records if len(r.boxes))] * 16
    x1 = [float(t[0]["boxes"][0, 0]) for _, t in dm.train_dataloader()]  # flipped or not
    assert len(set(x1)) == 2
    assert x1[0::2] != x1[1::2], "both workers drew the same flips"


@pytest.mark.parametrize("name", list_detectors())
def test_backbone_lr_scale_slows_only_the_pretrained_layers(name):
    task = DetectionTask(name, 3, optimizer="adamw", lr=1e-3, backbone_lr_scale=0.25)
    names = {id(p): n for n, p in task.model.named_parameters()}
    groups = task.optimizer_groups()
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(names)  # each parameter once
    for g in groups:  # the layers pretrained_backbone loads: the backbone body, an R-CNN's CNN
        want = {names[id(p)]: 2.5e-4 if names[id(p)].startswith(("backbone.body.", "cnn.")) else 1e-3
                for p in g["params"]}
        assert set(want.values()) == {g["lr"]}, (name, want)
    assert sum(names[i].startswith(("backbone.fpn.", "rpn.", "roi_heads.", "box_predictor."))
               for i in ids) > 0
    assert {g["lr"] for g in DetectionTask(name, 3, lr=1e-3).optimizer_groups()} == {1e-3}
    with pytest.raises(ConfigError, match="backbone_lr_scale must be above 0"):
        DetectionTask(name, 3, backbone_lr_scale=0.0)


def test_resuming_with_another_backbone_lr_split_is_one_line(tmp_path):
    def task(scale):
        torch.manual_seed(0)
        return DetectionTask("fasterrcnn_resnet18_fpn", 3, optimizer="adamw", backbone_lr_scale=scale,
                             faster_rcnn=tiny_faster_rcnn())

    trained = task(1.0)
    ckpt = {"state_dict": trained.state_dict(), LIGHTNING_VERSION_KEY: "2.6.0",
            "hyper_parameters": dict(trained.hparams),
            "optimizer_states": [torch.optim.AdamW(trained.optimizer_groups()).state_dict()]}
    write_record(ckpt, trained.checkpoint_record())
    torch.save(ckpt, tmp_path / "last.ckpt")
    check_checkpoint_fits(tmp_path / "last.ckpt", task(1.0), resume=True)  # the same split: fine
    with pytest.raises(ConfigError, match=r"its optimizer has 2 parameter groups, this run's 4; "
                                          r"resume with .* \(--model.backbone_lr_scale 1.0\)"):
        check_checkpoint_fits(tmp_path / "last.ckpt", task(2.0), resume=True)
    other_lr = task(1.0)
    other_lr.hparams.lr = 0.5  # as `--model.lr 0.5` beside `--ckpt_path` gives it
    with pytest.raises(ConfigError, match=r"last.ckpt: trained with lr 0.01, this run asks for 0.5; "
                                          r"a resumed run keeps its optimizer and schedule"):
        check_checkpoint_fits(tmp_path / "last.ckpt", other_lr, resume=True)
    check_checkpoint_fits(tmp_path / "last.ckpt", other_lr)  # evaluating it: no optimizer involved
