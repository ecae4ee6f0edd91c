"""Values a command cannot honour are refused in one line, never silently changed or ignored."""

from pathlib import Path

import pytest
import torch

from visionkit.cli import main
from visionkit.data.synthetic import make_shapes_classification
from visionkit.device import auto_device
from visionkit.errors import ConfigError

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
CLASSIFIER = str(WEIGHTS / "demo_shapes_classifier.ckpt")
DETECTOR = str(WEIGHTS / "demo_shapes_detector.ckpt")


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> str:
    root = make_shapes_classification(tmp_path_factory.mktemp("shapes"), n_train=1, n_val=1,
                                      size=64, seed=0)
    return str(sorted((root / "val").rglob("*.png"))[0])


def test_devices_this_machine_lacks_or_torch_does_not_know(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert auto_device("auto") == torch.device("cpu") and auto_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"unknown device 'gpu': use auto, cpu, cuda, cuda:N or mps"):
        auto_device("gpu")
    with pytest.raises(ConfigError, match=r"'cuda': this machine has no CUDA device \(available: cpu\)"):
        auto_device("cuda")
    with pytest.raises(ConfigError, match=r"'mps': this machine has no MPS device"):
        auto_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"'cuda:1': this machine has 1 CUDA device\(s\)"):
        auto_device("cuda:1")


@pytest.mark.parametrize("args, expected", [
    (["classify", "predict", "--ckpt", CLASSIFIER, "--device", "gpu"], "unknown device 'gpu'"),
    (["classify", "predict", "--ckpt", CLASSIFIER, "--out", "z.txt"], "name a .csv or .json file"),
    (["detect", "predict", "--weights", DETECTOR, "--precision", "fp16", "--device", "cpu"],
     "precision fp16 needs a CUDA or MPS device"),
])
def test_one_line_errors(args, expected, image, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*args, image]) == 1
    lines = [x for x in capsys.readouterr().err.splitlines() if ": error: " in x]
    assert len(lines) == 1 and expected in lines[0], lines
    assert not list(tmp_path.rglob("*.*")), "nothing written"


@pytest.mark.parametrize("args, expected", [
    (["detect", "predict", "--weights", DETECTOR, "--score-thresh", "1.5"],
     "--score-thresh: must be in [0, 1] (a score), got 1.5"),
    (["detect", "predict", "--weights", DETECTOR, "--batch-size", "0"],
     "--batch-size: must be at least 1, got 0"),
    (["classify", "predict", "--ckpt", CLASSIFIER, "--top-k", "0"], "--top-k: must be at least 1"),
])
def test_out_of_range_flags_stop_argparse(args, expected, image, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*args, image])
    assert stop.value.code == 2 and expected in capsys.readouterr().err


def test_top_k_above_the_class_count_says_what_it_wrote(image, tmp_path, capsys):
    from visionkit.inference.classification import load_classifier

    n = len(load_classifier(CLASSIFIER).classes)
    out = tmp_path / "pred.csv"
    assert main(["classify", "predict", "--ckpt", CLASSIFIER, "--top-k", str(n + 1), "--out",
                 str(out), image]) == 0
    assert f"top_k {n + 1} is more than the model's {n} classes; writing all {n} per image" in \
        capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 1 + n


def test_classify_predict_stops_at_an_unreadable_image_or_skips_and_lists_it(image, tmp_path,
                                                                           capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "good.png").write_bytes(Path(image).read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "pred.csv"
    args = ["classify", "predict", "--ckpt", CLASSIFIER, str(folder), "--out", str(out)]
    assert main(args) == 1
    [line] = [x for x in capsys.readouterr().err.splitlines() if ": error: " in x]
    assert "broken.jpg" in line and not out.exists()
    assert main([*args, "--skip-invalid"]) == 0
    assert "1 unreadable images left out (--skip-invalid)" in capsys.readouterr().err
    assert {row.split(",")[0] for row in out.read_text().splitlines()[1:]} == {str(folder / "good.png")}
    assert (tmp_path / "skipped_files.txt").read_text().startswith(str(folder / "broken.jpg"))
