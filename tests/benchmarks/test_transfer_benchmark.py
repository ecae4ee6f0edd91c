"""The transfer benchmark at a tiny size: JSON shape, curves, the saved backbone, the plain loop."""

import torch

from visionkit.benchmarks.transfer import run
from visionkit.data.synthetic import make_shapes_classification
from visionkit.models import create_classifier


def test_synthetic_case_saves_a_backbone_that_loads(tmp_path):
    weights = tmp_path / "w_{backbone}.pth"
    result = run(["--case", "synthetic", "--size", "32", "--n-train-a", "6", "--n-train-b", "3",
                  "--n-val", "3", "--epochs-a", "1", "--epochs-b", "2", "--weights", str(weights)])
    saved = tmp_path / "w_resnet18.pth"
    synthetic = result["synthetic"]
    assert "real" not in result and synthetic["task_a"]["weights"] == str(saved)
    assert set(synthetic["task_b"]["results"]) == {"linear_probe", "finetune", "from_scratch"}
    for entry in synthetic["task_b"]["results"].values():
        assert len(entry["val_acc"]) == 2 and entry["best"] == max(entry["val_acc"])
        assert entry["final"] == entry["val_acc"][-1]
    state = torch.load(saved, weights_only=True)
    model = create_classifier("resnet18", 2, pretrained=saved)
    assert torch.equal(model.backbone.net.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert "fc.weight" not in state  # the task-A head stays behind


def test_real_case_runs_each_strategy_and_the_plain_loops(tmp_path):
    root = make_shapes_classification(tmp_path / "data", ("circle", "square"), 4, 3, 32, seed=0)
    result = run(["--case", "real", "--root", str(root), "--epochs", "1", "--image-size", "32",
                  "--batch-size", "4", "--num-workers", "0", "--strategies",
                  "linear_probe,gradual", "--plain"])
    results = result["real"]["results"]
    assert set(results) == {"linear_probe", "gradual", "plain_finetune", "plain_linear_probe"}
    for entry in results.values():
        assert len(entry["val_acc"]) == 1 and entry["seconds"] > 0
        assert round(entry["val_acc"][0] * 6, 2) in range(7)  # 6 val images
