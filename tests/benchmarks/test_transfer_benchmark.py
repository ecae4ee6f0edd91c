"""Smoke test of the transfer benchmark at a tiny size: JSON shape and the saved backbone."""

import torch

from visionkit.benchmarks.transfer import run
from visionkit.models import create_classifier


def test_transfer_benchmark_smoke(tmp_path):
    weights = tmp_path / "w_{backbone}.pth"
    result = run(["--size", "32", "--n-train-a", "6", "--n-train-b", "3", "--n-val", "3",
                  "--epochs-a", "1", "--epochs-b", "1", "--weights", str(weights)])
    saved = tmp_path / "w_resnet18.pth"
    assert result["task_a"]["weights"] == str(saved)
    assert set(result["task_b"]["results"]) == {"linear_probe", "finetune", "from_scratch"}
    for entry in result["task_b"]["results"].values():
        assert 0.0 <= entry["val_acc"] <= 1.0
    state = torch.load(saved, weights_only=True)
    model = create_classifier("resnet18", 2, pretrained=saved)
    assert torch.equal(model.backbone.net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
