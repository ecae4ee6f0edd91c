"""The demo's shipped weights: how `weights/demo_shapes_*.ckpt` were made (`visionkit demo --make-weights`).

The detector is the `faster-rcnn` benchmark's model (ResNet-18 FPN, reduced heads, 256 px
scenes of circles, squares and triangles resized to 128 px) trained from scratch by that
benchmark; the classifier is the ImageNet EfficientNet-Lite0 (weights from the installed
package) fine-tuned on 64 px single shapes seen at 96 px. Both are saved as inference-only fp16
checkpoints (weights + metadata), and `demo_weights.json` records their validation metrics and
the command.

Why not a ResNet-18 from scratch, as before: on 120 shapes per class it memorises the training
set and reaches about 0.66 val accuracy after 40 epochs, and the same holds for a plain PyTorch
loop and for a small 4-layer CNN (0.54 after 8 epochs): with random colours and contrast per
image, a few hundred images are too few to learn shape from pixels. ImageNet features already
know edges and outlines: the fine-tuned EfficientNet-Lite0 scores 1.0 after its first epoch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from visionkit.data.synthetic import SHAPES, make_shapes_classification
from visionkit.fileio import write_json
from visionkit.models.weights import REPO_WEIGHTS, slim_checkpoint

DETECTOR_FILE = REPO_WEIGHTS / "demo_shapes_detector.ckpt"
CLASSIFIER_FILE = REPO_WEIGHTS / "demo_shapes_classifier.ckpt"
CLASSIFIER_CLASSES = SHAPES[:4]
COMMAND = "visionkit demo --make-weights"
CLASSIFIER_SIZE = 96  # the 64 px shapes upsampled: EfficientNet's stride-32 map is then 3x3
CLASSIFIER_RECIPE: dict[str, Any] = {
    "backbone": "efficientnet_lite0", "pretrained": "imagenet", "strategy": "finetune",
    "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "scheduler": "onecycle",
    "warmup_epochs": 0.5, "label_smoothing": 0.1}


def train_detector(work: Path, seed: int) -> tuple[Path, dict[str, Any]]:
    """Run the faster-rcnn benchmark keeping its run; (best checkpoint, benchmark JSON)."""
    from visionkit.benchmarks.detection import run

    result = run(["--keep", str(work), "--seed", str(seed)])
    return work / "run" / "checkpoints" / "best.ckpt", result


def train_classifier(work: Path, epochs: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Fine-tune ImageNet EfficientNet-Lite0 on 64 px synthetic shapes; (best checkpoint, val metrics)."""
    from visionkit.tasks.fitting import fit_classifier

    data = make_shapes_classification(work / "data", CLASSIFIER_CLASSES, n_train=120, n_val=30,
                                      size=64, seed=seed)
    record, _ = fit_classifier(
        data, work / "run", epochs=epochs, seed=seed,
        data={"image_size": CLASSIFIER_SIZE, "batch_size": 32, "num_workers": 0,
              "crop_scale": (0.5, 1.0), "color_jitter": 0.2},
        model=CLASSIFIER_RECIPE)
    return Path(record.best_model_path), {"best_val_acc": round(record.best, 4),
                                          "final_val_acc": round(record.final, 4),
                                          "val_acc": [round(v, 4) for v in record.curve],
                                          "epochs": epochs, "train_per_class": 120,
                                          "val_per_class": 30, "image_size": CLASSIFIER_SIZE,
                                          "recipe": CLASSIFIER_RECIPE, "seed": seed,
                                          "seconds": round(record.seconds, 1)}


def make_demo_weights(parts: tuple[str, ...] = ("detector", "classifier"),
                      work: str | os.PathLike = "runs/demo_weights", out: Path = REPO_WEIGHTS,
                      classifier_epochs: int = 3, seed: int = 0) -> dict[str, Any]:
    """Train the demo models named in ``parts``; write their slim checkpoints to ``out`` and
    their metrics to ``out/demo_weights.json`` (the other model's entry is kept)."""
    work, record_path = Path(work), out / "demo_weights.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record["command"] = COMMAND
    if "detector" in parts:
        det_ckpt, det = train_detector(work / "detector", seed)
        path = slim_checkpoint(det_ckpt, out / DETECTOR_FILE.name)
        record["detector"] = {"file": path.name, "mb": round(path.stat().st_size / 2**20, 1),
                              "val_map": det["val_map"], "val_map50": det["val_map50"],
                              "data": det["data"], "train": det["train"], "seconds": det["total_seconds"]}
    if "classifier" in parts:
        cls_ckpt, cls = train_classifier(work / "classifier", classifier_epochs, seed)
        path = slim_checkpoint(cls_ckpt, out / CLASSIFIER_FILE.name)
        record["classifier"] = {"file": path.name, "mb": round(path.stat().st_size / 2**20, 1),
                                "classes": list(CLASSIFIER_CLASSES), **cls}
    write_json(record_path, record)
    return record
