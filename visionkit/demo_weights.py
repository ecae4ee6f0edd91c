"""The demo's shipped weights: how `weights/demo_shapes_*.ckpt` were made (`visionkit demo --make-weights`).

The detector is the `faster-rcnn` benchmark's model (ResNet-18 FPN, reduced heads, 256 px
scenes of circles, squares and triangles resized to 128 px) trained from scratch by that
benchmark; the classifier is a ResNet-18 trained from scratch on 64 px single shapes. Both are
saved as inference-only fp16 checkpoints (weights + metadata), and `demo_weights.json` records
their validation metrics and the command.
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


def train_detector(work: Path, seed: int) -> tuple[Path, dict[str, Any]]:
    """Run the faster-rcnn benchmark keeping its run; (best checkpoint, benchmark JSON)."""
    from visionkit.benchmarks.detection import run

    result = run(["--keep", str(work), "--seed", str(seed)])
    return work / "run" / "checkpoints" / "best.ckpt", result


def train_classifier(work: Path, epochs: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Train ResNet-18 from scratch on 64 px synthetic shapes; (best checkpoint, val metrics)."""
    import lightning as L

    from visionkit.tasks.classification import ClassificationTask
    from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule
    from visionkit.tasks.trainer import build_trainer

    data = make_shapes_classification(work / "data", CLASSIFIER_CLASSES, n_train=120, n_val=30,
                                      size=64, seed=seed)
    L.seed_everything(seed, verbose=False)
    dm = ImageFolderDataModule(str(data), image_size=64, batch_size=32, num_workers=0,
                               crop_scale=(0.5, 1.0), color_jitter=0.2)
    task = ClassificationTask("resnet18", dm.num_classes, class_names=dm.classes, image_size=64,
                              optimizer="adamw", lr=2e-3, weight_decay=0.05, warmup_epochs=0.5)
    trainer = build_trainer(str(work / "run"), max_epochs=epochs, log_every_n_steps=2,
                            enable_model_summary=False, enable_progress_bar=False, deterministic=True)
    trainer.fit(task, dm)
    checkpoint = trainer.checkpoint_callback
    return Path(checkpoint.best_model_path), {"best_val_acc": round(float(checkpoint.best_model_score), 4),
                                              "epochs": epochs, "train_per_class": 120,
                                              "val_per_class": 30, "seed": seed}


def make_demo_weights(parts: tuple[str, ...] = ("detector", "classifier"),
                      work: str | os.PathLike = "runs/demo_weights", out: Path = REPO_WEIGHTS,
                      classifier_epochs: int = 40, seed: int = 0) -> dict[str, Any]:
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
