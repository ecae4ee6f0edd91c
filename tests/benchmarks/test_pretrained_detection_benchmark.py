"""The pretrained-detection benchmark: torchvision's twin equals our detector; a tiny run of both."""

import json

import torch
import yaml

from visionkit.benchmarks.pretrained_detection import config_optimizer, run, torchvision_twin
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.detection import create_detector

TINY = {"min_size": 96, "max_size": 96, "fpn_channels": 32, "representation_size": 64,
        "rpn_post_nms_top_n_test": 50, "box_score_thresh": 0.0}


def test_torchvision_twin_detects_exactly_what_ours_detects():
    torch.manual_seed(0)
    ours = create_detector("fasterrcnn_efficientnet_lite0_fpn", 3, pretrained_backbone="imagenet",
                           **TINY).eval()
    twin = torchvision_twin(ours).eval()
    images = [torch.rand(3, 80, 120, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    with torch.no_grad():
        expected, got = ours(images), twin(images)
    for a, b in zip(expected, got, strict=True):
        assert len(a["boxes"]) > 0
        torch.testing.assert_close(b["boxes"], a["boxes"], atol=1e-3, rtol=0)
        torch.testing.assert_close(b["scores"], a["scores"], atol=1e-4, rtol=0)
        assert torch.equal(b["labels"], a["labels"])


def test_the_twin_of_a_cascade_is_torchvision_s_faster_rcnn_with_its_first_stage():
    detectors = {}
    for name, stages in (("plain", []), ("cascade", [0.6, 0.7])):
        torch.manual_seed(0)  # the cascade's stages are drawn last: the same first stage
        detectors[name] = create_detector("fasterrcnn_efficientnet_lite0_fpn", 3,
                                          box_cascade_iou=stages, **TINY).eval()
    twin = torchvision_twin(detectors["cascade"]).eval()
    images = [torch.rand(3, 80, 120, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        expected, got = detectors["plain"](images)[0], twin(images)[0]
        cascade = detectors["cascade"](images)[0]
    assert len(expected["boxes"]) > 0
    torch.testing.assert_close(got["boxes"], expected["boxes"], atol=1e-3, rtol=0)
    torch.testing.assert_close(got["scores"], expected["scores"], atol=1e-4, rtol=0)
    assert not torch.allclose(cascade["scores"][:5], expected["scores"][:5])  # the cascade's own


def tiny_run_arguments(tmp_path, epochs: int, model: dict, data: dict) -> list[str]:
    """A benchmark's arguments for a tiny Lite0 FPN config on 4 + 2 shapes scenes, plotting to
    ``tmp_path / "map.png"``; ``model`` and ``data`` add to the config's sections."""
    root = make_shapes_detection(tmp_path / "data", ("circle", "square"), n_train=4, n_val=2,
                                 size=96, max_objects=2, seed=0)
    config = {"trainer": {"max_epochs": epochs, "gradient_clip_val": 10.0},
              "model": {"name": "fasterrcnn_efficientnet_lite0_fpn", "pretrained_backbone": "imagenet",
                        "optimizer": "adamw", "lr": 5e-4, "weight_decay": 1e-4,
                        "scheduler": "cosine", "warmup_epochs": 0.5, "faster_rcnn": TINY, **model},
              "data": {"batch_size": 2, "num_workers": 0, **data}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--config", str(path), "--train-json", str(root / "train.json"), "--val-json",
            str(root / "val.json"), "--image-root", str(root), "--minutes", "5",
            "--plot", str(tmp_path / "map.png")]


def test_tiny_run_of_both_detectors_writes_curves_and_a_plot(tmp_path):
    """With the config's weight EMA on, kept by our task and by the plain loop alike."""
    # EMA: both sides keep and validate it
    result = run(tiny_run_arguments(tmp_path, 1, {"ema_decay": 0.9}, {}))
    plot = tmp_path / "map.png"
    assert set(result["results"]) == {"ours", "torchvision"}
    for entry in result["results"].values():
        assert len(entry["val_map"]) == len(entry["elapsed"]) == 1
        assert entry["best"] == max(entry["val_map"]) and entry["final"] == entry["val_map"][-1]
        assert 0 < entry["elapsed"][0] <= entry["seconds"]
    assert plot.stat().st_size > 1000
    json.dumps(result)


def test_without_a_trainer_set_epoch_draws_each_epoch_afresh(tmp_path):
    """The plain loops' data: epoch e's order and flips as `detect fit` draws them for epoch e,
    not epoch 0's again (the loops call `set_epoch` before each epoch)."""
    from visionkit.tasks.detection_datamodule import DetectionDataModule
    from visionkit.tasks.fitting import seed_all

    root = make_shapes_detection(tmp_path / "data", ("circle", "square"), n_train=8, n_val=1,
                                 size=64, max_objects=2, seed=0)

    def epoch_batches(epoch):
        seed_all(0)
        dm = DetectionDataModule(str(root / "train.json"), str(root / "val.json"), str(root),
                                 batch_size=8, num_workers=0, hflip=0.5)
        dm.setup("fit")
        dm.set_epoch(epoch)
        images, targets = next(iter(dm.train_dataloader()))
        return [int(t["image_id"]) for t in targets], torch.stack(images)

    (ids0, images0), (ids0_again, images0_again), (ids1, images1) = (epoch_batches(e) for e in (0, 0, 1))
    assert ids0 == ids0_again and torch.equal(images0, images0_again)  # seeded by (seed, epoch)
    assert ids1 != ids0 and sorted(ids1) == sorted(ids0)  # another order of the same images


def test_the_twin_s_optimizer_scales_its_backbone_lr_as_the_config_asks():
    torch.manual_seed(0)
    twin = torchvision_twin(create_detector("fasterrcnn_resnet18_fpn", 3))
    body = {id(p) for p in twin.backbone.body.parameters()}
    hp = {"lr": 1e-3, "weight_decay": 1e-4, "optimizer": "adamw", "backbone_lr_scale": 2.0}
    groups = config_optimizer(twin, hp).param_groups
    assert sum(len(g["params"]) for g in groups) == len(list(twin.parameters()))
    for g in groups:
        want = 2e-3 if id(g["params"][0]) in body else 1e-3
        assert all((id(p) in body) == (want == 2e-3) for p in g["params"]) and g["lr"] == want
