"""results.png: metrics.csv columns read per epoch and drawn one panel per quantity."""

import numpy as np

from visionkit.evaluation.plots import plot_training_curves, read_metrics

CSV = """epoch,step,train_loss_step,lr,train_loss_epoch,val_loss,val_acc,val_acc/ants
0,0,0.9,,,,,
0,1,0.7,,,,,
0,1,,,,0.6,0.7,0.5
0,1,,0.01,0.8,,,
1,2,0.5,,,,,
1,3,0.4,,,,,
1,3,,,,0.45,0.8,0.75
1,3,,0.005,0.45,,,
"""


def test_metrics_are_read_per_column_with_their_epochs(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(CSV)
    metrics = read_metrics(path)
    assert set(metrics) == {"train_loss_step", "lr", "train_loss_epoch", "val_loss", "val_acc",
                            "val_acc/ants"}
    epochs, values = metrics["train_loss_step"]
    np.testing.assert_array_equal(epochs, [0, 0, 1, 1])
    np.testing.assert_array_equal(values, [0.9, 0.7, 0.5, 0.4])
    np.testing.assert_array_equal(metrics["val_acc"][1], [0.7, 0.8])
    out = plot_training_curves(path, tmp_path / "results.png")
    assert out == tmp_path / "results.png" and out.read_bytes()[:4] == b"\x89PNG"


def test_nothing_logged_draws_nothing(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,step,val_acc\n")
    assert plot_training_curves(tmp_path / "metrics.csv", tmp_path / "results.png") is None
    assert not (tmp_path / "results.png").exists()
