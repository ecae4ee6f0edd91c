"""The time-to-map benchmark: torchvision's reference recipe as its references/detection has it,
the times read off the curves, and a tiny run of both."""

import json

import pytest
import torch

from tests.benchmarks.test_pretrained_detection_benchmark import TINY, tiny_run_arguments
from visionkit.benchmarks.time_to_map import (
    first_reached,
    late_swing,
    reference_config,
    reference_factor,
    run,
)


def test_reference_schedule_is_torchvision_s_warmup_and_step_decay():
    """LinearLR(1/1000, min(1000, steps - 1)) in epoch 0 times MultiStepLR(16/26, 22/26 of the epochs)."""
    steps, epochs = 10, 26
    factor = reference_factor(steps, epochs)
    # the same thing built from torch's schedulers, as the reference's train.py steps them
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.001, total_iters=steps - 1)
    decay = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[16, 22], gamma=0.1)
    expected = []
    for epoch in range(epochs):
        for _ in range(steps):
            expected.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if epoch == 0:
                warmup.step()
        decay.step()
    assert [factor(s) for s in range(steps * epochs)] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_reference_config_keeps_the_detector_at_one_size_with_flips_only():
    config = {"model": {"name": "m", "ema_decay": 0.999, "lr": 5e-4,
                        "faster_rcnn": {"min_size": [384, 432, 480], "max_size": 768}},
              "data": {"batch_size": 4, "hflip": 0.5, "vflip": 0.5, "transpose": 0.5, "color_jitter": 0.2,
                       "crop": "bbox_safe", "max_size": 640}}
    model_config, data = reference_config(config)
    assert model_config["model"]["faster_rcnn"] == {"min_size": 480, "max_size": 768}
    assert "ema_decay" not in model_config["model"]
    assert data == {"batch_size": 4, "max_size": 640, "hflip": 0.5, "vflip": 0.0, "transpose": 0.0,
                    "color_jitter": 0.0, "crop": "none"}
    assert config["model"]["ema_decay"] == 0.999  # the shipped config is left alone


def test_times_and_swing_are_read_off_the_curve():
    entry = {"val_map": [0.3, 0.46, 0.44, 0.52, 0.5, 0.55], "elapsed": [10, 20, 30, 40, 50, 60]}
    assert first_reached(entry, 0.45) == 20 and first_reached(entry, 0.5) == 40
    assert first_reached(entry, 0.6) is None
    assert late_swing(entry["val_map"]) == 0.05  # 0.52 -> 0.50 -> 0.55 in the second half


def test_tiny_run_of_both_recipes_reports_times_and_a_plot(tmp_path):
    # ours a cascade (the reference: its first stage) with 2 planned epochs, the reference 3
    arguments = tiny_run_arguments(
        tmp_path, 2, {"faster_rcnn": {**TINY, "min_size": [80, 96], "box_cascade_iou": [0.6]}},
        {"vflip": 0.5})
    result = run([*arguments, "--targets", "0.0,2.0", "--reference-epochs", "3"])
    plot = tmp_path / "map.png"
    ours, reference = result["results"]["ours"], result["results"]["reference"]
    assert (result["epochs"], result["reference_epochs"]) == (2, 3)
    for entry, epochs in ((ours, 2), (reference, 3)):
        assert len(entry["val_map"]) == len(entry["elapsed"]) == epochs
        assert entry["seconds_to"]["0.0"] == entry["elapsed"][0]  # any mAP reaches 0
        assert entry["seconds_to"]["2.0"] is None
    assert reference["lr"] == pytest.approx(0.02 / 16 * 2) and reference["min_size"] == 96
    assert result["time_ratio_0.0"] == pytest.approx(ours["elapsed"][0] / reference["elapsed"][0], abs=1e-3)
    assert result["reference_reached_2.0"] is False and result["time_ratio_2.0"] is None
    assert plot.stat().st_size > 1000
    json.dumps(result)
