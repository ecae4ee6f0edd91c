"""Bad input through `visionkit ...`: one `error:` line naming the culprit, nothing written."""

import json
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

from tests.tiny import TINY_FASTER_RCNN, tiny_faster_rcnn_args
from visionkit.cli import main
from visionkit.data.synthetic import make_shapes_classification
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.tasks.checkpoint_io import save_task_checkpoint
from visionkit.tasks.classification import ClassificationTask
from visionkit.tasks.cli import LIGHTNING_VERSION_KEY, check_checkpoint_fits
from visionkit.tasks.detection import DetectionTask

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--trainer.max_epochs", "1", "--trainer.num_sanity_val_steps", "0"]
CLASSIFY = ["--config", str(CONFIGS / "classify" / "resnet18_finetune.yaml"), "--data.image_size",
            "32", "--data.batch_size", "4", "--data.num_workers", "0", *QUIET]
DETECT = ["--config", str(CONFIGS / "detect" / "fasterrcnn_resnet18_fpn.yaml"), "--data.batch_size",
          "2", "--data.num_workers", "0", *tiny_faster_rcnn_args(), *QUIET]
SHAPES = ["circle", "square", "triangle"]


def error_line(stderr: str, command: str) -> str:
    """The one error line of a failed command (Lightning's own messages may share stderr)."""
    lines = [line for line in stderr.splitlines() if line.startswith(f"visionkit {command}: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def written(folder: Path) -> list[str]:
    """Every file under ``folder``: a failed run must leave none, half-written or whole."""
    return sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def fails(capsys, command: str, *args: str) -> str:
    assert main([command, *args]) == 1
    return error_line(capsys.readouterr().err, command)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Classification folder (train/val) with classes circle, square, triangle."""
    return make_shapes_classification(tmp_path_factory.mktemp("shapes"), n_train=4, n_val=2,
                                      size=32, seed=0)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """Detection set: circle (id 1), star (id 5)."""
    return make_shapes_detection(tmp_path_factory.mktemp("coco"), ("circle", "star"), n_train=2,
                                 n_val=2, size=64, max_objects=2)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Checkpoints as `save_task_checkpoint` writes them (visionkit metadata, no training state)."""
    folder = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    tasks = {
        "five classes": ClassificationTask("resnet18", 5, class_names=list("abcde"), image_size=32),
        "shapes": ClassificationTask("resnet18", 3, class_names=SHAPES, image_size=32),
        "detection": DetectionTask("fasterrcnn_resnet18_fpn", 3, faster_rcnn=TINY_FASTER_RCNN,
                                   class_names=["circle", "star"], category_ids=[1, 5]),
    }
    return {name: save_task_checkpoint(task, folder / f"{name.replace(' ', '_')}.ckpt")
            for name, task in tasks.items()}


def classify(command, shapes, out, *extra):
    return [command, *CLASSIFY, "--data.root", str(shapes), "--trainer.default_root_dir", str(out),
            *extra]


def detect(command, coco, out, *extra):
    return [command, *DETECT, "--data.train_json", str(coco / "train.json"), "--data.val_json",
            str(coco / "val.json"), "--data.image_root", str(coco),
            "--trainer.default_root_dir", str(out), *extra]


def test_one_class_folder_is_an_error(tmp_path, capsys):
    root = tmp_path / "data"
    (root / "circle").mkdir(parents=True)
    (root / "empty").mkdir()
    for i in range(2):
        Image.new("RGB", (32, 32), (80 * i, 0, 0)).save(root / "circle" / f"{i}.png")
    line = fails(capsys, "classify", *classify("fit", root, tmp_path / "run",
                                               "--data.skip_invalid", "true"))
    assert f"{root}: only one class folder, 'circle' ({root / 'empty'} left out: no images)" in line
    assert "a classifier needs two or more" in line
    assert written(tmp_path / "run") == []


def test_unknown_backbone(shapes, tmp_path, capsys):
    line = fails(capsys, "classify", *classify("fit", shapes, tmp_path / "run",
                                               "--model.backbone", "resnet19"))
    assert "unknown backbone 'resnet19'; known: alexnet" in line
    assert written(tmp_path / "run") == []


def test_unknown_detector(coco, tmp_path, capsys):
    line = fails(capsys, "detect", *detect("fit", coco, tmp_path / "run", "--model.name", "yolo"))
    assert "unknown detector 'yolo'; known: fast_rcnn_alexnet, fast_rcnn_resnet18" in line
    assert written(tmp_path / "run") == []


def test_num_classes_is_the_data_s_not_a_config_value(shapes, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", *classify("fit", shapes, tmp_path / "run", "--model.num_classes", "5")])
    assert exit_info.value.code == 2
    assert 'error: Linked "model.num_classes" must be given via "data.num_classes"' in (
        capsys.readouterr().err)
    assert written(tmp_path / "run") == []


@pytest.mark.parametrize("task, key, value, source", [
    ("classify", "num_classes", "5", "data.num_classes"),
    ("classify", "class_names", "[a, b, c]", "data.classes"),
    ("detect", "category_ids", "[1, 2]", "data.category_ids"),
])
def test_a_config_file_that_sets_what_the_data_decides_is_refused(shapes, coco, tmp_path, capsys,
                                                                  task, key, value, source):
    # jsonargparse would drop the file's value for the data's without a word.
    config = tmp_path / "config.yaml"
    config.write_text(f"model:\n  {key}: {value}\n")
    args = (classify if task == "classify" else detect)("fit", shapes if task == "classify" else coco,
                                                        tmp_path / "run", "--config", str(config))
    line = fails(capsys, task, *args)
    assert line.endswith(f"error: model.{key}: comes from the data ({source}), not from a config; "
                         f"remove it from the config file")
    assert written(tmp_path / "run") == []


def test_ckpt_path_with_other_classes_says_what_to_change(shapes, ckpts, tmp_path, capsys):
    ckpt = ckpts["five classes"]
    line = fails(capsys, "classify", *classify("validate", shapes, tmp_path / "run",
                                               "--ckpt_path", str(ckpt)))
    assert f"{ckpt}: trained with num_classes=5, classes ['a', 'b', 'c', 'd', 'e'] but the data " \
           f"gives num_classes=3, classes {SHAPES}" in line
    assert f"--model.pretrained {ckpt} instead of --ckpt_path" in line
    assert written(tmp_path / "run") == []


@pytest.mark.parametrize("command, ckpt, expected", [
    ("classify", "detection", "not a classification checkpoint (task: detection)"),
    ("detect", "shapes", "not a detection checkpoint (task: classification)"),
])
def test_ckpt_path_of_another_task(command, ckpt, expected, shapes, coco, ckpts, tmp_path, capsys):
    args = (classify if command == "classify" else detect)(
        "validate", shapes if command == "classify" else coco, tmp_path / "run",
        "--ckpt_path", str(ckpts[ckpt]))
    line = fails(capsys, command, *args)
    assert f"{ckpts[ckpt]}: {expected}" in line
    assert written(tmp_path / "run") == []


def test_ckpt_path_of_other_weights_names_the_differing_arguments(shapes, ckpts, tmp_path, capsys):
    ckpt = ckpts["shapes"]
    line = fails(capsys, "classify", *classify("test", shapes, tmp_path / "run", "--ckpt_path",
                                               str(ckpt), "--model.head", "mlp"))
    assert f"{ckpt}: weights do not fit this run's model (missing keys model.head.hidden" in line
    assert "whose arguments differ: {'head': 'linear'}" in line


def test_ckpt_path_without_training_state(shapes, ckpts, tmp_path, capsys):
    ckpt = ckpts["shapes"]
    line = fails(capsys, "classify", *classify("validate", shapes, tmp_path / "run", "--ckpt_path",
                                               str(ckpt)))
    assert f"{ckpt}: an inference-only checkpoint" in line and "--model.pretrained" in line


def test_a_matching_training_checkpoint_passes_the_check(ckpts, tmp_path):
    data = torch.load(ckpts["shapes"], weights_only=True)
    torch.save({**data, LIGHTNING_VERSION_KEY: "2.6.0"}, tmp_path / "fit.ckpt")
    check_checkpoint_fits(tmp_path / "fit.ckpt", ClassificationTask("resnet18", 3, class_names=SHAPES))


def test_predict_with_a_detection_checkpoint(shapes, ckpts, tmp_path, capsys):
    out = tmp_path / "out" / "pred.csv"
    line = fails(capsys, "classify", "predict", "--ckpt", str(ckpts["detection"]),
                 str(shapes / "val"), "--out", str(out))
    assert f"{ckpts['detection']}: not a classification checkpoint (task: detection)" in line
    assert written(tmp_path / "out") == []


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "resnet18 classification.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def test_classification_weights_of_another_architecture(shapes, resnet18_weights, tmp_path, capsys):
    line = fails(capsys, "classify", *classify("fit", shapes, tmp_path / "run", "--model.backbone",
                                               "resnet34", "--model.pretrained",
                                               str(resnet18_weights)))
    assert f"{resnet18_weights}: weights do not fit backbone 'resnet34': missing keys" in line
    assert "pass weights of a resnet34" in line
    assert written(tmp_path / "run") == []


def test_classification_weights_given_as_detector_weights(coco, resnet18_weights, tmp_path, capsys):
    line = fails(capsys, "detect", *detect("fit", coco, tmp_path / "run", "--model.pretrained",
                                           str(resnet18_weights)))
    assert f"{resnet18_weights}: weights do not fit this detector" in line
    assert "classification weights go to pretrained_backbone" in line
    assert written(tmp_path / "run") == []


def test_invalid_coco_file_stops_fit_naming_the_record(coco, tmp_path, capsys):
    val = json.loads((coco / "val.json").read_text())
    val["annotations"].append({**val["annotations"][0]})
    bad = tmp_path / "val dup.json"
    bad.write_text(json.dumps(val))
    args = detect("fit", coco, tmp_path / "run", "--data.val_json", str(bad))
    line = fails(capsys, "detect", *args)
    assert f"{bad}: duplicate annotation ids [{val['annotations'][0]['id']}] (field 'id'" in line
    assert not list((tmp_path / "run").rglob("*.ckpt")) and not list(
        (tmp_path / "run").rglob(".*.tmp"))


def test_file_failing_in_a_loader_worker_is_one_line_naming_it(shapes, tmp_path, capsys, monkeypatch):
    import shutil

    from visionkit.data import image_folder

    monkeypatch.setattr(image_folder, "DECODE_CHECK_MAX", 0)  # a large folder: headers checked only
    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    noise = torch.randint(0, 255, (256, 256, 3), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    Image.fromarray(noise.numpy()).save(tmp_path / "full.jpg")
    raw = (tmp_path / "full.jpg").read_bytes()
    (data / "train" / "circle" / "cut.jpg").write_bytes(raw[: len(raw) // 2])  # header passes
    err = fails(capsys, "classify", "fit", *CLASSIFY, "--data.root", str(data), "--data.num_workers",
                "1", "--trainer.default_root_dir", str(tmp_path / "run"))
    assert "cut.jpg: cannot decode image" in err and "DataLoader worker" not in err


def test_missing_ckpt_path_file_is_one_line(shapes, tmp_path, capsys):
    err = fails(capsys, "classify", "validate", *CLASSIFY, "--data.root", str(shapes),
                "--trainer.default_root_dir", str(tmp_path / "run"), "--ckpt_path", str(tmp_path / "no.ckpt"))
    assert "no.ckpt: no such file" in err
