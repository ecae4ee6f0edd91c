"""Grad-CAM of a classification or detection checkpoint on image files: PNG panels plus an index."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from visionkit.data.images import read_image
from visionkit.data.sources import expand_image_sources
from visionkit.data.transforms import classification_eval_transform
from visionkit.detection import RCNN
from visionkit.errors import ConfigError
from visionkit.explain.gradcam import box_score, class_score, grad_cam
from visionkit.explain.overlay import caption, enlarge, mark, overlay, write_png
from visionkit.fileio import write_json
from visionkit.inference.checkpoints import load_checkpoint_model
from visionkit.inference.detector_loading import LoadedDetector

MIN_SIDE = 224  # small model inputs are shown enlarged (pixels repeated) to at least this side


def class_index(target: str | None, classes: Sequence[str]) -> int | None:
    """Index of `target` given as a class name or number; None stays None (top-1 class)."""
    if target is None:
        return None
    if target in classes:
        return list(classes).index(target)
    if target.isdigit() and int(target) < len(classes):
        return int(target)
    raise ConfigError(f"--class {target!r} is not a class of this model ({', '.join(classes)})")


def model_view(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised `[3, H, W]` model input back as RGB uint8 `[H, W, 3]`."""
    rgb = image.cpu() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    return (rgb.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def _free_name(folder: Path, stem: str, taken: set[str]) -> Path:
    name, n = f"{stem}_gradcam.png", 0
    while name in taken:
        n += 1
        name = f"{stem}_{n}_gradcam.png"
    taken.add(name)
    return folder / name


def gradcam_files(ckpt: str | os.PathLike, sources: Sequence[str], out_dir: str | os.PathLike, *,
                  layer: str | None = None, target: str | None = None, method: str = "gradcam",
                  device: str | torch.device = "cpu") -> list[dict]:
    """For each image: `<stem>_gradcam.png` (model input | heatmap overlay) and a row of `gradcam.json`.

    The heatmap is for class `target` (name or index; default: the predicted class) and is drawn
    on the image as the model saw it (resized and centre-cropped like `classify predict`).
    A detection checkpoint goes to `detection_gradcam_files` (``target`` is then the detection's
    rank, 0 = top score).
    """
    loaded = load_checkpoint_model(ckpt, device)
    if isinstance(loaded, LoadedDetector):
        rank = int(target) if target is not None and target.isdigit() else 0
        return detection_gradcam_files(loaded, sources, out_dir, layer=layer, detection=rank,
                                       method=method, device=device)
    wanted = class_index(target, loaded.classes)
    transform = classification_eval_transform(loaded.image_size, loaded.mean, loaded.std,
                                              crop_fraction=loaded.crop_fraction)
    out_dir, taken, rows = Path(out_dir), set(), []
    for path in expand_image_sources(sources):
        x = transform(image=read_image(path))["image"][None].to(device)
        result = grad_cam(loaded.model, x, class_score(wanted), layer=layer, method=method)
        probs = result.output.softmax(1)[0].cpu()
        cls = int(probs.argmax()) if wanted is None else wanted
        view = model_view(x[0], loaded.mean, loaded.std)
        shown = enlarge(overlay(view, result.heatmaps[0].cpu().numpy()), MIN_SIDE)
        gap = np.full((shown.shape[0], 4, 3), 255, np.uint8)
        panel = np.concatenate([enlarge(view, MIN_SIDE), gap, shown], 1)
        text = f"{loaded.classes[cls]} p={probs[cls]:.2f}  {method} @ {result.layer}"
        png = write_png(_free_name(out_dir, Path(path).stem, taken), caption(panel, text))
        rows.append({"path": str(path), "class": loaded.classes[cls], "prob": round(float(probs[cls]), 6),
                     "method": method, "layer": result.layer, "png": str(png)})
    write_json(out_dir / "gradcam.json", rows)
    return rows


def detection_gradcam_files(loaded: LoadedDetector, sources: Sequence[str], out_dir: str | os.PathLike,
                            *, layer: str | None = None, detection: int = 0, method: str = "gradcam",
                            device: str | torch.device = "cpu") -> list[dict]:
    """For each image: the heatmap of detection number ``detection`` (0 = top score), box drawn;
    ``loaded`` on ``device``."""
    if isinstance(loaded.model, RCNN):
        raise ConfigError(f"{loaded.source}: R-CNN classifies each warped proposal on its own, so it "
                          f"has no whole-image feature map to explain; Grad-CAM takes Faster R-CNN and "
                          f"Fast R-CNN checkpoints")
    out_dir, taken, rows = Path(out_dir), set(), []
    for path in expand_image_sources(sources):
        image = read_image(path)
        x = torch.from_numpy(image.copy()).permute(2, 0, 1).float().div(255).to(device)
        with torch.inference_mode():
            found = len(loaded.model([x])[0]["scores"])
        if detection >= found:
            rows.append({"path": str(path), "detections": found, "png": None})
            continue
        result = grad_cam(loaded.model, [x], box_score(detection), layer=layer, method=method)
        det = {k: v[detection].cpu() for k, v in result.output[0].items()}
        label = int(det["labels"])
        shown = mark(overlay(image, result.heatmaps[0].cpu().numpy()), det["boxes"].tolist())
        panel = np.concatenate([mark(image, det["boxes"].tolist()), np.full((image.shape[0], 4, 3), 255,
                                                                          np.uint8), shown], 1)
        text = (f"#{detection} {loaded.class_name(label)} {float(det['scores']):.2f}  {method} "
                f"@ {result.layer}")
        png = write_png(_free_name(out_dir, Path(path).stem, taken), caption(enlarge(panel, MIN_SIDE), text))
        rows.append({"path": str(path), "detection": detection, "class": loaded.class_name(label),
                     "category_id": loaded.category_id(label), "score": round(float(det["scores"]), 6),
                     "box": [round(v, 2) for v in det["boxes"].tolist()], "method": method,
                     "layer": result.layer, "png": str(png)})
    write_json(out_dir / "gradcam.json", rows)
    return rows
