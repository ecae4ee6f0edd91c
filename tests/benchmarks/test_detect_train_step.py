"""detect-train-step: our detector and torchvision's twin take equal losses at step 0, and the
JSON has every stage of both."""

import json

import yaml

from visionkit.benchmarks.detect_train_step import STEP_STAGES, run


def test_a_tiny_run_times_both_with_equal_step0_losses(tmp_path):
    config = yaml.safe_load(open("configs/detect/fasterrcnn_resnet18_fpn.yaml"))
    config["model"]["faster_rcnn"].update(min_size=96, max_size=128, fpn_channels=32,
                                          representation_size=64)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run(["--configs", str(path), f"{path}:112", "--batch", "2", "--height", "120",
                  "--width", "160", "--steps", "2", "--repeats", "1", "--warmup", "0"])
    json.dumps(result)
    first, sized = result["results"]
    assert (first["min_size"], first["max_size"]) == (96, 128)
    assert (sized["min_size"], sized["max_size"]) == (112, round(112 * 1333 / 800))
    for entry in result["results"]:
        losses = entry["step0_losses"]
        assert set(losses["ours"]) == set(losses["torchvision"]) == {
            "loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
        assert entry["losses_equal"] and entry["step0_loss_max_abs_diff"] <= 1e-4
        assert entry["steps_timed"] == 2 and entry["ours_s"] > 0 and entry["torchvision_s"] > 0
        assert abs(entry["ratio"] - entry["ours_s"] / entry["torchvision_s"]) < 0.01
        assert set(entry["stages"]) == set(STEP_STAGES)
        assert all(entry["stages"][s]["ours"] > 0 for s in ("backbone", "rpn", "roi_heads", "backward"))


def test_real_batches_come_through_the_config_s_pipeline_with_its_time(tmp_path):
    from visionkit.data.synthetic_detection import make_shapes_detection

    root = make_shapes_detection(tmp_path / "data", ("circle", "square"), n_train=4, n_val=1,
                                 size=96, max_objects=2)
    config = yaml.safe_load(open("configs/detect/fasterrcnn_resnet18_fpn.yaml"))
    config["model"]["faster_rcnn"].update(min_size=96, max_size=96, fpn_channels=32,
                                          representation_size=64)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run(["--configs", str(path), "--train-json", str(root / "train.json"), "--image-root",
                  str(root), "--batch", "2", "--steps", "2", "--repeats", "1", "--warmup", "0"])
    entry = result["results"][0]
    assert entry["steps_timed"] == 2
    # The RPN's losses come before any NMS: equal. The RoI heads' may differ when the proposals'
    # NMS meets near-ties, which a tiny random-init model on 96-px shapes makes common (ours
    # computes IoU in float64, torchvision in float32); the benchmark reports the difference.
    ours, theirs = entry["step0_losses"]["ours"], entry["step0_losses"]["torchvision"]
    for key in ("loss_objectness", "loss_rpn_box_reg"):
        assert abs(ours[key] - theirs[key]) <= 1e-6, key
    assert entry["stages"]["data"]["seconds_per_batch"] > 0
