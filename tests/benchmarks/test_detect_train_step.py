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
        assert entry["ratio"] == round(entry["ours_s"] / entry["torchvision_s"], 3)
        assert set(entry["stages"]) == set(STEP_STAGES)
        assert all(entry["stages"][s]["ours"] > 0 for s in ("backbone", "rpn", "roi_heads", "backward"))
