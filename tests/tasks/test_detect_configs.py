"""Every shipped detection config trains, and `visionkit detect fit --help` lists every detector option."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml

from visionkit.cli import main
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.detection.options import SECTIONS, section

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "detect").glob("*.yaml"))
OFFLINE = {"imagenet", "coco"}  # weights a clean machine without internet may lack (but Lite0's)


def test_help_lists_every_detector_option_with_its_default(capsys):
    assert main(["detect", "fit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for key, cls in SECTIONS.items():
        for f in fields(cls):
            assert f"--model.{key}.{f.name} " in text, f"--model.{key}.{f.name} not in --help"
    for flag, default in [("min_size", 800), ("rpn_post_nms_top_n_train", 2000),
                          ("box_batch_size_per_image", 512)]:
        # "--model.faster_rcnn.min_size MIN_SIZE[, ...min_size+ MIN_SIZE] <help> (type: ..., default: 800)"
        described = re.search(rf"--model\.faster_rcnn\.{flag} [A-Z_]+(, \S+ [A-Z_]+)? (.(?!--model))*?"
                              rf"default: ([^)]+)\)", text)
        assert described and described.group(3) == str(default), (flag, described)
    assert all(f.default is not MISSING or f.default_factory is not MISSING
               for cls in SECTIONS.values() for f in fields(cls))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_detection(tmp_path_factory.mktemp("cfg"), ("circle", "star"), n_train=4,
                                 n_val=2, size=64, max_objects=2, seed=0)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_trains_a_step(config, shapes, tmp_path):
    model = yaml.safe_load(config.read_text())["model"]
    key = section(model["name"])
    small = {"faster_rcnn": {"min_size": 64, "max_size": 64},
             "fast_rcnn": {"min_size": 64, "max_size": 64, "proposals.max_proposals": 50},
             "rcnn": {"warp_size": 32, "max_proposals_train": 50, "max_proposals_test": 50,
                      "proposals.max_proposals": 50}}[key]
    weights = []
    for arg in ("pretrained", "pretrained_backbone"):  # torchvision's files: not on a clean machine
        if model.get(arg) in OFFLINE and model["name"] != "fasterrcnn_efficientnet_lite0_fpn":
            weights += [f"--model.{arg}", "null"]
    out = tmp_path / "run"
    args = ["detect", "fit", "--config", str(config), "--data.train_json", str(shapes / "train.json"),
            "--data.val_json", str(shapes / "val.json"), "--data.image_root", str(shapes),
            "--data.batch_size", "2", "--data.num_workers", "0", "--data.proposal_cache",
            str(tmp_path / "proposals"), "--trainer.default_root_dir", str(out),
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
            "--trainer.log_every_n_steps", "1", "--trainer.num_sanity_val_steps", "0",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            *weights, *[a for k, v in small.items() for a in (f"--model.{key}.{k}", str(v))]]
    assert main(args) == 0
    run = out / "version_0"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    with open(run / "metrics.csv") as f:
        losses = [float(r["train_loss_step"]) for r in csv.DictReader(f) if r.get("train_loss_step")]
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses), losses


def test_a_whole_options_section_on_the_command_line_merges_into_the_configs(capsys):
    config = CONFIGS[0].parent / "fasterrcnn_efficientnet_lite0_fpn.yaml"
    args = ["detect", "fit", "--config", str(config), "--data.train_json", "t.json",
            "--data.val_json", "v.json", "--data.image_root", ".",
            "--model.faster_rcnn", "{min_size: 256}", "--print_config"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)["model"]["faster_rcnn"]
    written = yaml.safe_load(config.read_text())["model"]["faster_rcnn"]
    assert printed["min_size"] == 256  # the one option given
    for key, value in written.items():  # every other option of the config kept
        if key != "min_size":
            assert printed[key] == value, key
