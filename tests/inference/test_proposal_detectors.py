"""R-CNN and Fast R-CNN through the commands: `detect proposals`, `detect fit` with their configs,
`detect predict` on the checkpoint (proposals computed by the model itself)."""

import json

import torch

from visionkit.checkpoint_record import read_record
from visionkit.cli import main
from visionkit.detection import SelectiveSearch
from visionkit.detection.options import FastRCNNOptions, ProposalOptions, RCNNOptions
from visionkit.tasks.checkpoint_io import save_task_checkpoint
from visionkit.tasks.detection import DetectionTask

QUICK = ["--data.batch_size", "2", "--data.num_workers", "0", "--data.proposal_workers", "0",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--trainer.max_epochs", "1", "--trainer.num_sanity_val_steps", "0"]
PROPOSALS = {"max_proposals": 200}


def test_proposals_command_fills_the_cache_and_reports_recall(shapes_set, tmp_path, capsys):
    args = ["detect", "proposals", "--json", str(shapes_set / "val.json"), "--cache", str(tmp_path / "c"),
            "--out", str(tmp_path / "r"), "--num-workers", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6 images" in out and "(6 computed, 0 cached)" in out and "R@0.5" in out
    report = json.loads((tmp_path / "r" / "recall.json").read_text())
    assert report["counts"][-1] == 2000 and report["num_images"] == 6
    assert report["recall"]["0.5"][-1] >= 0.9  # simple shapes on noise: selective search finds them
    assert (tmp_path / "r" / "recall.png").stat().st_size > 0
    assert len(list((tmp_path / "c").glob("*/*.npy"))) == 6
    assert main(args) == 0
    assert "(0 computed, 6 cached)" in capsys.readouterr().out


def test_fit_with_the_fast_rcnn_config_uses_cached_proposals(shapes_set, tmp_path):
    cache = tmp_path / "cache"
    options = {"min_size": 64, "max_size": 64, "roi_pool": "align", "representation_size": 32,
               "proposals": PROPOSALS}
    args = ["detect", "fit", "--config", "configs/detect/fast_rcnn_resnet18.yaml",
            "--data.train_json", str(shapes_set / "train.json"), "--data.val_json",
            str(shapes_set / "val.json"), "--data.image_root", str(shapes_set),
            "--data.proposal_cache", str(cache), "--trainer.default_root_dir", str(tmp_path / "run"),
            "--model.fast_rcnn", json.dumps(options), *QUICK]
    assert main(args) == 0
    assert len(list(cache.glob("*/*.npy"))) == 10  # 4 train + 6 val images, computed once
    best = tmp_path / "run" / "version_0" / "checkpoints" / "best.ckpt"
    record = read_record(torch.load(best, weights_only=True), best, "detection")
    assert record.model["name"] == "fast_rcnn_resnet18"
    assert record.model["proposals"] == SelectiveSearch("fast", **PROPOSALS).settings  # the config says fast

    out = tmp_path / "pred"
    assert main(["detect", "predict", "--weights", str(best), "--gt", str(shapes_set / "val.json"),
                 "--out", str(out), "--num-workers", "0", "--no-images"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert {r["category_id"] for r in results} <= {1, 5}


def test_rcnn_checkpoint_predicts(shapes_set, tmp_path):
    torch.manual_seed(0)
    options = RCNNOptions(warp_size=32, proposals=ProposalOptions(**PROPOSALS), max_proposals_test=50)
    task = DetectionTask("rcnn_resnet18", 3, rcnn=options,
                         class_names=["circle", "star"], category_ids=[1, 5])
    ckpt = save_task_checkpoint(task, tmp_path / "rcnn.ckpt")
    out = tmp_path / "pred"
    assert main(["detect", "predict", "--weights", str(ckpt), "--gt", str(shapes_set / "val.json"),
                 "--out", str(out), "--num-workers", "0", "--no-images", "--score-thresh", "0"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results and {r["image_id"] for r in results} <= set(range(1, 11))


def test_proposal_detectors_refuse_export_with_one_line(tmp_path, capsys):
    task = DetectionTask("fast_rcnn_resnet18", 3, fast_rcnn=FastRCNNOptions(min_size=64, max_size=64),
                         class_names=["circle", "star"], category_ids=[1, 5])
    ckpt = save_task_checkpoint(task, tmp_path / "fast.ckpt")
    out = tmp_path / "m.pt"
    assert main(["export", "--ckpt", str(ckpt), "--format", "torchscript", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "fast_rcnn_resnet18 computes its proposals with selective search" in err
    assert not list(tmp_path.glob("*.pt*"))


def test_rcnn_summary_is_one_region_and_gradcam_refuses_it(shapes_set, tmp_path, capsys):
    assert main(["summary", "rcnn_resnet18"]) == 0
    assert "input 1x3x224x224: 11,176,512 parameters" in capsys.readouterr().out  # one warped region
    task = DetectionTask("rcnn_resnet18", 3, rcnn=RCNNOptions(warp_size=32),
                         class_names=["circle", "star"], category_ids=[1, 5])
    ckpt = save_task_checkpoint(task, tmp_path / "rcnn.ckpt")
    image = str(shapes_set / "images" / "val" / "0000.png")
    assert main(["explain", "gradcam", "--ckpt", str(ckpt), image, "--out", str(tmp_path / "g")]) == 1
    assert "R-CNN classifies each warped proposal on its own" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
