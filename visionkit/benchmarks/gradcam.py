"""Grad-CAM localisation: does the heatmap's peak fall inside the object's box?

A classifier is trained from scratch on the synthetic shapes set — by default circle, ring and
cross, which a ResNet-18 separates after a few hundred steps (circle / square / triangle need
far more than a CPU benchmark affords). Its best checkpoint is loaded as `visionkit explain
gradcam` loads it; on held-out images from the same distribution, with each shape's box
recorded, Grad-CAM and Grad-CAM++ for the true class are computed at each layer asked for (by
default Grad-CAM's own choice, the last conv block, and ResNet's `layer3`, one stride finer),
and a hit is a peak whose pixel centre lies inside the box. Two baselines show what a hit rate
means: the image centre as the guess, and a uniformly random pixel (the mean fraction of the
image the box covers). The shapes are large, so the centre is often inside the box;
`peak_in_box_off_centre` counts only the images where it is not.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from visionkit.data.synthetic import SHAPES, draw_shape, make_shapes_classification
from visionkit.data.transforms import classification_eval_transform
from visionkit.errors import ConfigError
from visionkit.explain.gradcam import METHODS, class_score, grad_cam
from visionkit.explain.overlay import caption, enlarge, grid, mark, overlay, write_png
from visionkit.fileio import atomic_write_with
from visionkit.inference.classification import load_classifier


def shape_with_box(kind: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An image like `synthetic.shape_image` and the `xyxy` box of the drawn shape's pixels."""
    bg = rng.integers(0, 256, 3)
    image = np.clip(bg + rng.normal(0, 18, (size, size, 3)), 0, 255).astype(np.uint8)
    fg = tuple(int(c) for c in (bg + rng.integers(80, 176, 3)) % 256)
    r = rng.uniform(0.2, 0.4) * size
    cx, cy = rng.uniform(r, size - r, 2)
    angle = rng.uniform(0, 2 * np.pi)
    draw_shape(image, kind, cx, cy, r, angle, fg)
    mask = np.zeros_like(image)
    draw_shape(mask, kind, cx, cy, r, angle, (255, 255, 255))
    ys, xs = np.nonzero(mask[..., 0])
    return image, np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def heldout_set(classes: list[str], n: int, size: int, seed: int) -> list[tuple[np.ndarray, int, np.ndarray]]:
    """`n` (image, label, box) triples per class, interleaved by class."""
    rng = np.random.default_rng(seed)
    per_class = [[shape_with_box(kind, size, rng) for _ in range(n)] for kind in classes]
    return [(img, label, box) for i in range(n) for label, items in enumerate(per_class)
            for img, box in [items[i]]]


def peaks(heatmaps: torch.Tensor) -> np.ndarray:
    """(x, y) pixel centres of each `[B, H, W]` map's maximum."""
    flat = heatmaps.flatten(1).argmax(1)
    w = heatmaps.shape[-1]
    return torch.stack([flat % w, flat // w], 1).numpy() + 0.5


def inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per row: is point (x, y) inside box `xyxy`?"""
    return ((points[:, 0] >= boxes[:, 0]) & (points[:, 0] <= boxes[:, 2])
            & (points[:, 1] >= boxes[:, 1]) & (points[:, 1] <= boxes[:, 3]))


def evaluate(model: torch.nn.Module, mean: tuple, std: tuple, samples: list, size: int,
             method: str, layer: str | None, batch_size: int = 32) -> tuple[dict, np.ndarray]:
    """Hit rates of the heatmap peak (all images, correctly classified, off-centre objects),
    accuracy and layer; and the heatmaps `[N, H, W]`."""
    transform = classification_eval_transform(size, mean, std, crop_fraction=1.0)
    hits, correct, maps, used_layer, cells = [], [], [], "", ""
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        x = torch.stack([transform(image=img)["image"] for img, _, _ in chunk])
        labels = [label for _, label, _ in chunk]
        result = grad_cam(model, x, class_score(labels), layer=layer, method=method)
        boxes = np.stack([box for _, _, box in chunk])
        hits.append(inside(peaks(result.heatmaps), boxes))
        correct.append(result.output.argmax(1).numpy() == np.array(labels))
        maps.append(result.heatmaps.numpy())
        used_layer, cells = result.layer, "x".join(map(str, result.cells.shape[1:]))
    hits_all, correct_all = np.concatenate(hits), np.concatenate(correct)
    boxes = np.stack([box for _, _, box in samples])
    off_centre = ~inside(np.full((len(samples), 2), size / 2), boxes)
    metrics = {"peak_in_box": _rate(hits_all), "peak_in_box_correct_only": _rate(hits_all[correct_all]),
               "peak_in_box_off_centre": _rate(hits_all[off_centre]),
               "off_centre_images": int(off_centre.sum()), "accuracy": _rate(correct_all),
               "layer": used_layer, "cells": cells}
    return metrics, np.concatenate(maps)


def _rate(flags: np.ndarray) -> float | None:
    return round(float(flags.mean()), 4) if len(flags) else None


def example_sheet(samples: list, heatmaps: np.ndarray, classes: list[str], n: int,
                  scale: int = 2) -> np.ndarray:
    """Overlays of the first `n` held-out images, enlarged, with the box (green) and the peak (cross)."""
    tiles = []
    points = peaks(torch.from_numpy(heatmaps[:n]))
    for (img, label, box), heat, point in zip(samples[:n], heatmaps[:n], points):
        hit = "in box" if inside(point[None], box[None])[0] else "MISS"
        big = enlarge(overlay(img, heat), img.shape[0] * scale)
        tiles.append(caption(mark(big, box * scale, point * scale), f"{classes[label]}: {hit}"))
    return grid(tiles, columns=min(n, 4))


def run(argv: list[str]) -> dict:
    """Train on shapes, score Grad-CAM(++) localisation on held-out images, return the results."""
    from visionkit.tasks.fitting import fit_classifier

    parser = argparse.ArgumentParser(prog="visionkit benchmark gradcam", description=__doc__)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--classes", default="circle,ring,cross",
                        help=f"comma-separated shapes from {', '.join(SHAPES)} (default: three a "
                             f"ResNet learns from scratch in minutes on a CPU)")
    parser.add_argument("--size", type=int, default=96, help="image side (px)")
    parser.add_argument("--n-train", type=int, default=1000, help="training images per class")
    parser.add_argument("--n-val", type=int, default=30, help="validation images per class")
    parser.add_argument("--n-test", type=int, default=100, help="held-out images per class")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--layers", default="default,backbone.net.layer3",
                        help="comma-separated layers to explain; 'default' is Grad-CAM's own choice "
                             "(the last conv block). The example sheet uses the first.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", default=None, help="write an overlay sheet to this PNG")
    parser.add_argument("--save-checkpoint", default=None, help="keep the best checkpoint here")
    args = parser.parse_args(argv)

    classes = args.classes.split(",")
    if not set(classes) <= set(SHAPES) or len(classes) < 2:
        raise ConfigError(f"--classes {args.classes!r}: name two or more of {', '.join(SHAPES)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vk_gradcam_") as tmp:
        data = make_shapes_classification(Path(tmp) / "data", classes, args.n_train, args.n_val,
                                          args.size, seed=args.seed)
        record, _ = fit_classifier(
            data, Path(tmp) / "runs", epochs=args.epochs, seed=args.seed,
            data={"image_size": args.size, "batch_size": 16, "num_workers": 0,
                  "crop_scale": (0.5, 1.0), "color_jitter": 0.2},
            model={"backbone": args.backbone, "optimizer": "adamw", "weight_decay": 0.01,
                   "lr": args.lr},
            trainer={"deterministic": True})
        val_acc, best = record.best, Path(record.best_model_path)
        loaded = load_classifier(best)
        if args.save_checkpoint:
            atomic_write_with(args.save_checkpoint, lambda dest: shutil.copyfile(best, dest))
    train_seconds = time.perf_counter() - started
    model, mean, std = loaded.model, loaded.mean, loaded.std
    classes = loaded.classes  # the model's label order (class folders sorted by name)
    samples = heldout_set(classes, args.n_test, args.size, seed=args.seed + 1000)
    boxes = np.stack([box for _, _, box in samples])
    centre = np.full((len(samples), 2), args.size / 2)
    results, sheet_maps = [], None
    for layer in args.layers.split(","):
        for method in METHODS:
            metrics, maps = evaluate(model, mean, std, samples, args.size, method,
                                     None if layer == "default" else layer)
            results.append({"method": method, "layer_asked": layer, **metrics})
            sheet_maps = maps if sheet_maps is None else sheet_maps
    if args.examples:
        write_png(args.examples, example_sheet(samples, sheet_maps, classes, 8), colours=256)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / args.size ** 2
    return {
        "benchmark": "gradcam",
        "backbone": args.backbone,
        "image_size": args.size,
        "classes": classes,
        "train_per_class": args.n_train,
        "epochs": args.epochs,
        "val_acc": round(val_acc, 4),
        "heldout_images": len(samples),
        "results": results,
        "baselines": {"image_centre_in_box": round(float(inside(centre, boxes).mean()), 4),
                      "random_pixel_in_box": round(float(area.mean()), 4)},
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
