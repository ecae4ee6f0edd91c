"""The offline demo: train a classifier on embedded synthetic shapes, predict, write a report.

Everything lands under `runs/demo/` with `index.md` linking the images; no download needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from visionkit.data.images import read_image
from visionkit.data.synthetic import SHAPES, make_shapes_classification
from visionkit.fileio import atomic_open, atomic_write_with, write_json
from visionkit.inference.classification import load_classifier, predict_topk, write_predictions

DEMO_CLASSES = SHAPES[:4]


def prediction_sheet(rows: list[dict], path: str | os.PathLike, columns: int = 8,
                     tile: int = 128) -> Path:
    """A grid of images captioned with their top-1 class and probability (green = correct)."""
    tiles = []
    for row in rows:
        image = cv2.resize(read_image(row["path"]), (tile, tile), interpolation=cv2.INTER_AREA)
        truth = Path(row["path"]).parent.name
        best = row["top"][0]
        color = (0, 160, 0) if best["class"] == truth else (200, 0, 0)
        caption = np.full((22, tile, 3), 255, np.uint8)
        cv2.putText(caption, f"{best['class']} {best['prob']:.2f}", (4, 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
        tiles.append(np.vstack([image, caption]))
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    grid = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    return atomic_write_with(path, lambda tmp: cv2.imwrite(tmp, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)))


def run_demo(out: str | os.PathLike = "runs/demo", epochs: int = 4, seed: int = 0) -> Path:
    """Train resnet18 on synthetic shapes, classify the val images, write `out/index.md`."""
    import lightning as L

    from visionkit.tasks.classification import ClassificationTask
    from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule
    from visionkit.tasks.trainer import build_trainer

    out = Path(out)
    data = make_shapes_classification(out / "data", DEMO_CLASSES, n_train=60, n_val=16, size=64,
                                      seed=seed)
    L.seed_everything(seed, verbose=False)
    dm = ImageFolderDataModule(str(data), image_size=64, batch_size=32, num_workers=0,
                               crop_scale=(0.5, 1.0), color_jitter=0.2)
    task = ClassificationTask("resnet18", dm.num_classes, class_names=dm.classes, image_size=64,
                              optimizer="adamw", lr=2e-3, weight_decay=0.05, warmup_epochs=0.5)
    trainer = build_trainer(str(out / "classify"), max_epochs=epochs, log_every_n_steps=2,
                            enable_model_summary=False, deterministic=True)
    trainer.fit(task, dm)
    run_dir = Path(trainer.log_dir)
    ckpt = run_dir / "checkpoints" / "best.ckpt"

    loaded = load_classifier(ckpt)
    val_images = sorted((data / "val").rglob("*.png"))
    rows = predict_topk(loaded, val_images, top_k=3)
    write_predictions(rows, out / "predictions.csv")
    prediction_sheet(rows[::2], out / "predictions.png")
    accuracy = float(np.mean([r["top"][0]["class"] == Path(r["path"]).parent.name for r in rows]))
    write_json(out / "metrics.json", {"val_accuracy": accuracy, "classes": list(loaded.classes),
                                      "images": len(rows), "checkpoint": str(ckpt)})
    confusion = run_dir / "val_confusion_matrix.png"
    with atomic_open(out / "index.md", "w", encoding="utf-8") as f:
        f.write(
            "# visionkit demo\n\n"
            f"ResNet-18 trained from scratch for {epochs} epochs on synthetic shapes "
            f"({', '.join(DEMO_CLASSES)}; 64 px), then used to classify {len(rows)} held-out "
            f"images.\n\n**Validation accuracy: {accuracy:.3f}**\n\n"
            f"- checkpoint: `{ckpt}`\n- training metrics: `{run_dir / 'metrics.csv'}`\n"
            f"- predictions: `predictions.csv`\n\n"
            "## Predictions (green: correct, red: wrong)\n\n![predictions](predictions.png)\n\n"
            f"## Confusion matrix\n\n![confusion]({os.path.relpath(confusion, out)})\n"
        )
    return out
