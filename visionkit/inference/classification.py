"""Loading a classification checkpoint and predicting top-k classes for image files."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from albumentations import Compose

from visionkit.checkpoint_record import read_record
from visionkit.data.sources import expand_image_sources
from visionkit.data.transforms import classification_eval_transform
from visionkit.device import auto_device
from visionkit.errors import ConfigError, ImageReadError
from visionkit.fileio import atomic_open, is_onnx_file
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

    def eval_transform(self) -> Compose:
        """The evaluation preprocessing: RGB uint8 HWC array → normalised float CHW tensor."""
        return classification_eval_transform(self.image_size, self.mean, self.std,
                                             crop_fraction=self.crop_fraction)

    @torch.inference_mode()
    def top_k(self, images: torch.Tensor, k: int) -> list[list[tuple[int, float]]]:
        """Per image of the preprocessed batch ``images`` (on the model's device): the top-``k``
        (class index, softmax probability) pairs, best first."""
        probs = self.model(images).softmax(1).float().cpu()
        values, indices = probs.topk(min(k, len(self.classes)), dim=1)
        return [list(zip(idxs, vals)) for idxs, vals in zip(indices.tolist(), values.tolist())]


def load_classifier(ckpt: str | os.PathLike, device: torch.device | str = "cpu"
                    ) -> LoadedClassifier:
    """Rebuild the classifier saved by `visionkit classify fit` (tensors only are unpickled);
    a ``.onnx`` file from `visionkit export` runs in ONNX Runtime instead (on the CPU)."""
    if is_onnx_file(ckpt):
        from visionkit.inference.onnx_backend import load_onnx_classifier  # it builds on this module

        return load_onnx_classifier(ckpt)
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


def predict_topk(loaded: LoadedClassifier, paths: Sequence[str | os.PathLike], top_k: int = 5,
                 batch_size: int = 32, num_workers: int = 0,
                 device: torch.device | str = "cpu", *,
                 skipped: list[tuple[str, str]] | None = None) -> list[dict]:
    """One row per image: path and the top-k (class, probability) pairs, best first.

    An unreadable image raises `ImageReadError`; with a ``skipped`` list it is appended there as
    ``(path, reason)`` instead. For arrays or PIL images, `visionkit.load` gives a callable
    model with the same preprocessing.
    """
    from visionkit.inference.ensemble import ensemble_scores  # it builds on this module

    kept, scores = ensemble_scores([loaded], _path_list(paths), batch_size=batch_size,
                                   num_workers=num_workers, device=device, skipped=skipped)
    return topk_rows(kept, scores, loaded.classes, top_k)


def topk_rows(paths: Sequence[str], scores: torch.Tensor, classes: Sequence[str], top_k: int
              ) -> list[dict]:
    """One row per image: ``{"path", "top": [{"class", "prob"}, ...]}`` from scores ``[N, K]``."""
    values, indices = scores.topk(min(top_k, len(classes)), dim=1)
    return [{"path": path, "top": [{"class": classes[i], "prob": v} for i, v in zip(idx, vals)]}
            for path, idx, vals in zip(paths, indices.tolist(), values.tolist(), strict=True)]


def _path_list(paths: Sequence[str | os.PathLike]) -> list[str | os.PathLike]:
    """``paths`` as a list; `ImageReadError` naming the type of anything that is not a path."""
    if isinstance(paths, (str, os.PathLike)) or not isinstance(paths, Iterable) or hasattr(paths, "shape"):
        what = f"a single {type(paths).__name__}"
    else:
        paths = list(paths)
        bad = [p for p in paths if not isinstance(p, (str, os.PathLike))]
        if not bad:
            return paths
        what = f"{type(bad[0]).__name__} items"
    raise ImageReadError(f"predict_topk takes a list of image file paths, got {what}; for arrays "
                         f"or PIL images call visionkit.load(checkpoint)(images)")


def _predictions_file(out: str | os.PathLike) -> Path:
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".json"):
        raise ConfigError(f"{out}: name a .csv or .json file (the suffix picks the format)")
    return out


def write_predictions(rows: list[dict], out: str | os.PathLike) -> Path:
    """Write rows as JSON (`.json`) or CSV (`.csv`: path, rank, class, prob) atomically."""
    out = _predictions_file(out)
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
    """Copy each image to ``folder/<top-1 class>/<its path below the images' common folder>``.

    Idempotent: a re-run overwrites its own copies, and removes an image's copy from a class
    folder it is no longer predicted in; same names from different folders stay apart.
    """
    folder = Path(folder)
    sources = [Path(row["path"]).resolve() for row in rows]
    base = Path(os.path.commonpath([p.parent for p in sources])) if sources else Path()
    earlier = [d for d in folder.iterdir() if d.is_dir()] if folder.is_dir() else []
    for row, source in zip(rows, sources):
        rel = source.relative_to(base)
        predicted = folder / row["top"][0]["class"]
        for other in earlier:
            if other != predicted and (other / rel).is_file():
                (other / rel).unlink()
        dest = predicted / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
    return folder


def predict_to_file(ckpt: str | os.PathLike | Sequence[str | os.PathLike], sources: Sequence[str], *,
                    out: str | os.PathLike | None = None, top_k: int = 5, batch_size: int = 32,
                    num_workers: int = 0, device: str = "auto",
                    sort_into: str | os.PathLike | None = None, skip_invalid: bool = False,
                    vote: str = "soft", tta: bool = False) -> Path:
    """Predict top-k for every image in `sources`; write CSV/JSON (and sorted copies).

    ``ckpt``: one checkpoint, or several combined by ``vote`` (`visionkit.inference.ensemble`);
    ``tta``: each model also sees the mirror image.
    """
    from visionkit.inference.ensemble import check_members, ensemble_scores

    out = _predictions_file(out or "runs/classify/predict/predictions.csv")
    paths = expand_image_sources(sources)
    dev = auto_device(device)
    ckpts = [ckpt] if isinstance(ckpt, (str, os.PathLike)) else list(ckpt)
    members = [load_classifier(c, dev) for c in ckpts]
    check_members(members, [str(c) for c in ckpts])
    classes = members[0].classes
    if top_k > len(classes):
        print(f"note: top_k {top_k} is more than the model's {len(classes)} classes; "
              f"writing all {len(classes)} per image", file=sys.stderr)
    skipped: list[tuple[str, str]] | None = [] if skip_invalid else None
    kept, scores = ensemble_scores(members, paths, vote=vote, tta=tta, batch_size=batch_size,
                                   num_workers=num_workers, device=dev, skipped=skipped)
    rows = topk_rows(kept, scores, classes, top_k)
    out_path = write_predictions(rows, out)
    if skipped:
        report = out_path.with_name("skipped_files.txt")
        with atomic_open(report, "w", encoding="utf-8") as f:
            f.writelines(f"{path}\t{reason}\n" for path, reason in skipped)
        print(f"{len(skipped)} unreadable images left out (--skip-invalid), listed in {report}",
              file=sys.stderr)
    if sort_into:
        sort_into_folders(rows, sort_into)
    return out_path
