"""Loading a classification checkpoint and predicting top-k classes for image files."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from visionkit.checkpoint_record import read_record
from visionkit.data.image_folder import ImageFolderDataset, collate_classification
from visionkit.data.sources import expand_image_sources
from visionkit.data.transforms import classification_eval_transform
from visionkit.device import auto_device
from visionkit.fileio import atomic_open
from visionkit.models import ImageClassifier, create_classifier
from visionkit.models.weights import load_checkpoint_file


@dataclass
class LoadedClassifier:
    """A classifier in eval mode with the preprocessing and class names it was trained with."""

    model: ImageClassifier
    classes: list[str]
    image_size: int
    crop_fraction: float
    mean: list[float]
    std: list[float]


def load_classifier(ckpt: str | os.PathLike, device: torch.device | str = "cpu"
                    ) -> LoadedClassifier:
    """Rebuild the classifier saved by `visionkit classify fit` (tensors only are unpickled)."""
    return classifier_from_checkpoint(load_checkpoint_file(ckpt), Path(ckpt), device)


def classifier_from_checkpoint(data: dict, path: Path, device: torch.device | str = "cpu"
                               ) -> LoadedClassifier:
    """The classifier in checkpoint contents ``data`` already read from ``path``."""
    record = read_record(data, path, "classification")
    model = create_classifier(**{**record.model, "pretrained": None})
    state = {k.removeprefix("model."): v for k, v in data["state_dict"].items()}
    model.load_state_dict(state)
    model.eval().to(device)
    return LoadedClassifier(model, record.class_names(), record.image_size, record.crop_fraction,
                            record.mean, record.std)


@torch.inference_mode()
def predict_topk(loaded: LoadedClassifier, paths: Sequence[str | os.PathLike], top_k: int = 5,
                 batch_size: int = 32, num_workers: int = 0,
                 device: torch.device | str = "cpu") -> list[dict]:
    """One row per image: path and the top-k (class, probability) pairs, best first."""
    transform = classification_eval_transform(loaded.image_size, loaded.mean, loaded.std,
                                              crop_fraction=loaded.crop_fraction)
    dataset = ImageFolderDataset([(str(p), -1) for p in paths], loaded.classes, transform)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_classification)
    k = min(top_k, len(loaded.classes))
    rows = []
    for batch in tqdm(loader, desc="classify", unit="batch", leave=False):
        probs = loaded.model(batch["image"].to(device)).softmax(1).float().cpu()
        values, indices = probs.topk(k, dim=1)
        for path, vals, idxs in zip(batch["path"], values.tolist(), indices.tolist()):
            rows.append({"path": path, "top": [{"class": loaded.classes[i], "prob": v}
                                               for i, v in zip(idxs, vals)]})
    return rows


def write_predictions(rows: list[dict], out: str | os.PathLike) -> Path:
    """Write rows as JSON (`.json`) or CSV (path, rank, class, prob) atomically."""
    out = Path(out)
    if out.suffix.lower() == ".json":
        with atomic_open(out, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
        return out
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "rank", "class", "prob"])
    for row in rows:
        for rank, hit in enumerate(row["top"], 1):
            writer.writerow([row["path"], rank, hit["class"], f"{hit['prob']:.6f}"])
    with atomic_open(out, "w", encoding="utf-8", newline="") as f:
        f.write(buffer.getvalue())
    return out


def sort_into_folders(rows: list[dict], folder: str | os.PathLike) -> Path:
    """Copy each image into `folder/<top-1 class>/`; equal names get a `_1`, `_2`… suffix."""
    folder = Path(folder)
    for row in rows:
        target = folder / row["top"][0]["class"]
        target.mkdir(parents=True, exist_ok=True)
        name = Path(row["path"])
        dest, n = target / name.name, 0
        while dest.exists():
            n += 1
            dest = target / f"{name.stem}_{n}{name.suffix}"
        shutil.copy2(row["path"], dest)
    return folder


def predict_to_file(ckpt: str | os.PathLike, sources: Sequence[str], *,
                    out: str | os.PathLike | None = None, top_k: int = 5, batch_size: int = 32,
                    num_workers: int = 0, device: str = "auto",
                    sort_into: str | os.PathLike | None = None) -> Path:
    """Predict top-k for every image in `sources`; write CSV/JSON (and sorted copies)."""
    paths = expand_image_sources(sources)
    dev = auto_device(device)
    loaded = load_classifier(ckpt, dev)
    rows = predict_topk(loaded, paths, top_k, batch_size, num_workers, dev)
    out_path = write_predictions(rows, out or Path("runs/classify/predict/predictions.csv"))
    if sort_into:
        sort_into_folders(rows, sort_into)
    return out_path
