"""Detection over image files, folders, globs and videos: batched, streamed to disk, resumable.

`detect_to_dir` writes under ``out``: ``images/`` (annotated copies, one colour per class),
``predictions.jsonl`` (one line per image, see `detection_records`), then ``results.json``
(COCO results that `visionkit evaluate` reads), ``predictions.csv``, and an annotated
``<video stem>.mp4`` per video. Image ids are those of ``gt`` (a COCO JSON) when given, else
1..N in the sorted order of the sources.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from visionkit.data.images import read_image
from visionkit.data.sources import expand_image_sources
from visionkit.device import auto_device
from visionkit.errors import ConfigError, DatasetError, ImageReadError
from visionkit.evaluation.drawing import draw_detections
from visionkit.fileio import atomic_open, atomic_write_with
from visionkit.inference.box_fusion import weighted_boxes_fusion
from visionkit.inference.detection_records import RecordLog, write_coco_results, write_csv
from visionkit.inference.detector_loading import COCO_MODEL, LoadedDetector, load_detector
from visionkit.ops import batched_nms
from visionkit.progress import progress_bar

if TYPE_CHECKING:
    from tqdm import tqdm

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
WRITABLE_IMAGE = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class PredictSummary:
    """What a prediction run did and where its files are."""

    out_dir: Path
    images: int = 0
    detections: int = 0
    skipped: list[str] = field(default_factory=list)
    resumed: int = 0
    annotated_images: int = 0  # written under images/
    files: list[Path] = field(default_factory=list)


class ImageFiles(Dataset):
    """``{"index", "path", "image"}`` per file (RGB uint8 HWC), or ``{"error"}`` for a bad one."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        try:
            return {"index": index, "path": path, "image": read_image(path)}
        except ImageReadError as err:  # reported by the main process: one clear line, no hang
            return {"index": index, "path": path, "error": str(err)}


def as_list(batch: list) -> list:
    """Collate that keeps a batch as the list of its items."""
    return batch


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed-precision context: "auto" is bf16 (else fp16) on CUDA and fp32 elsewhere."""
    if precision == "auto":
        if device.type != "cuda":
            return contextlib.nullcontext()
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in ("fp16", "bf16"):
        raise ConfigError(f"precision must be auto, fp32, fp16 or bf16, got {precision!r}")
    if precision == "fp16" and device.type == "cpu":  # CPU autocast leaves most ops in fp32
        raise ConfigError("precision fp16 needs a CUDA or MPS device; on CPU use bf16 or fp32")
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


class Detector:
    """A loaded detector with the run's filters; ``__call__`` maps RGB arrays to detection lists."""

    def __init__(self, loaded: LoadedDetector, device: torch.device, precision: str = "auto",
                 classes: Sequence[str] | None = None) -> None:
        self.loaded, self.device, self.precision = loaded, device, precision
        autocast(device, precision)  # refuses a precision this device cannot run, before any work
        self.keep_labels = self._labels(classes) if classes else None

    def _labels(self, classes: Sequence[str]) -> set[int]:
        names, ids = self.loaded.classes, self.loaded.category_ids
        labels = set()
        for c in classes:
            if c in names:
                labels.add(names.index(c) + 1)
            elif c.isdigit() and int(c) in ids:
                labels.add(ids.index(int(c)) + 1)
            else:
                raise ConfigError(f"--classes: {c!r} is neither a class name nor a category id of this "
                                  f"detector (classes: {', '.join(n for n in names if n != 'N/A')})")
        return labels

    @torch.inference_mode()
    def __call__(self, images: Sequence[np.ndarray]) -> list[list[dict[str, Any]]]:
        """Per image: ``[{"bbox" xyxy, "label", "class", "category_id", "score"}, ...]``, best first."""
        tensors = [torch.from_numpy(np.require(im, requirements=["C", "W"])).to(self.device)
                   .permute(2, 0, 1).float().div_(255) for im in images]
        with autocast(self.device, self.precision):
            outputs = self.loaded.model(tensors)
        return [detection_rows(self.loaded, out["boxes"].float().cpu(), out["labels"].cpu(),
                               out["scores"].float().cpu(), self.keep_labels) for out in outputs]


def detection_rows(loaded: LoadedDetector, boxes: torch.Tensor, labels: torch.Tensor,
                   scores: torch.Tensor, keep_labels: set[int] | None = None) -> list[dict[str, Any]]:
    """``[{"bbox" xyxy, "label", "class", "category_id", "score"}, ...]`` of one image's
    detections (``boxes [D, 4]``, ``labels [D]``, ``scores [D]`` on the CPU), only the labels
    in ``keep_labels`` when it is given."""
    return [{"bbox": box, "label": label, "class": loaded.class_name(label),
             "category_id": loaded.category_id(label), "score": score}
            for box, label, score in zip(boxes.tolist(), labels.tolist(), scores.tolist(), strict=True)
            if keep_labels is None or label in keep_labels]


FUSIONS = ("wbf", "nms")


class EnsembleDetector:
    """Several detectors, and test-time augmentation, as one ``Detector``-like callable.

    Every member runs on every view of an image (the image itself; its mirror with ``flip``;
    each of ``scales`` times its size); boxes are mapped back to the image's pixels and fused
    per class by weighted boxes fusion (``"wbf"``, `visionkit.inference.box_fusion`) or pooled
    and reduced by per-class NMS (``"nms"``), ``max_det`` best kept. Members must share their
    classes and category ids.

    Args:
        members: the detectors (with the run's device, precision and class filter).
        flip: add the horizontally mirrored image.
        scales: image size factors to run at (1.0: the image as given); None: (1.0,).
        fusion: "wbf" or "nms".
        iou_threshold: WBF's cluster or NMS's suppression IoU.
        max_det: detections kept per image.
    """

    def __init__(self, members: Sequence[Detector], *, flip: bool = False,
                 scales: Sequence[float] | None = None, fusion: str = "wbf",
                 iou_threshold: float = 0.55, max_det: int = 100) -> None:
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
        first = members[0].loaded
        for member in members[1:]:
            if (member.loaded.classes, member.loaded.category_ids) != (first.classes, first.category_ids):
                raise ConfigError(f"{member.loaded.source}: classes/category ids differ from "
                                  f"{first.source}'s; an ensemble's detectors need the same ones")
        self.members, self.loaded = list(members), first
        self.flip, self.scales = flip, tuple(scales or (1.0,))
        if any(s <= 0 for s in self.scales):
            raise ConfigError(f"scales must be positive, got {list(self.scales)}")
        self.fusion, self.iou_threshold, self.max_det = fusion, iou_threshold, max_det

    def views(self, images: Sequence[np.ndarray]) -> list[tuple[list[np.ndarray], bool]]:
        """``(images, mirrored)`` for every view the members run on (a scaled image's sides are
        rounded: boxes map back by each side's own ratio)."""
        out = []
        for scale in self.scales:
            scaled = list(images) if scale == 1.0 else [
                cv2.resize(im, (max(1, round(im.shape[1] * scale)), max(1, round(im.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
                for im in images]
            out.append((scaled, False))
            if self.flip:
                out.append(([np.ascontiguousarray(im[:, ::-1]) for im in scaled], True))
        return out

    def __call__(self, images: Sequence[np.ndarray]) -> list[list[dict[str, Any]]]:
        """Per image: the fused ``[{"bbox", "label", "class", "category_id", "score"}, ...]``."""
        pooled: list[list[tuple[list[float], int, float]]] = [[] for _ in images]
        sources = 0
        for view, mirrored in self.views(images):
            for member in self.members:
                sources += 1
                for i, (rows, image) in enumerate(zip(member(view), view, strict=True)):
                    height, width = image.shape[:2]
                    ratio_x, ratio_y = images[i].shape[1] / width, images[i].shape[0] / height
                    for row in rows:
                        x1, y1, x2, y2 = row["bbox"]
                        if mirrored:
                            x1, x2 = width - x2, width - x1
                        box = [x1 * ratio_x, y1 * ratio_y, x2 * ratio_x, y2 * ratio_y]
                        pooled[i].append((box, row["label"], row["score"]))
        return [self._fuse(rows, sources) for rows in pooled]

    def _fuse(self, rows: list[tuple[list[float], int, float]], sources: int) -> list[dict[str, Any]]:
        if not rows:
            return []
        boxes = torch.tensor([r[0] for r in rows], dtype=torch.float32)  # [N, 4]
        labels = torch.tensor([r[1] for r in rows], dtype=torch.int64)
        scores = torch.tensor([r[2] for r in rows], dtype=torch.float32)
        if self.fusion == "wbf":
            boxes, scores, labels = weighted_boxes_fusion(boxes, scores, labels, sources,
                                                          self.iou_threshold)
        else:
            keep = batched_nms(boxes, scores, labels, self.iou_threshold)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        return detection_rows(self.loaded, boxes[: self.max_det], labels[: self.max_det],
                              scores[: self.max_det])


def split_sources(sources: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """(image files, video files) named by files, folders and globs."""
    videos = [Path(s) for s in sources if Path(s).suffix.lower() in VIDEO_EXTENSIONS]
    rest = [s for s in sources if Path(s).suffix.lower() not in VIDEO_EXTENSIONS]
    for video in videos:
        if not video.is_file():
            raise DatasetError(f"{video}: no such video file")
    return (expand_image_sources(rest) if rest else []), videos


def read_gt(gt: str | os.PathLike, image_root: str | os.PathLike | None
            ) -> tuple[dict[Path, int], dict[int, str]]:
    """A COCO JSON's ``{resolved image path: id}`` (file names relative to ``image_root``) and
    ``{category id: name}``, from one read of the file."""
    gt = Path(gt)
    try:
        data = json.loads(gt.read_text(encoding="utf-8"))
        root = Path(image_root) if image_root else gt.parent
        images = {(root / im["file_name"]).resolve(): int(im["id"]) for im in data["images"]}
        categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"{gt}: cannot read its images[].file_name / id or categories[].id / "
                           f"name ({err})") from err
    return images, categories


def check_gt_categories(loaded: LoadedDetector, categories: dict[int, str], gt: str | os.PathLike
                        ) -> None:
    """Raise `DatasetError` unless each of ``loaded``'s classes is among ``gt``'s ``categories``
    with the same id and name: results written with other ids would not evaluate against ``gt``."""
    wrong = [f"{i}:{name}" for i, name in zip(loaded.category_ids, loaded.classes)
             if categories.get(i) != name]
    if wrong:
        theirs = ", ".join(f"{i}:{name}" for i, name in sorted(categories.items())[:10])
        raise DatasetError(f"{loaded.source}: category ids/names {', '.join(wrong[:10])} are not "
                           f"among {gt}'s categories ({theirs}); this detector was trained on "
                           f"other classes, so its results would not evaluate against {gt}")


def assign_image_ids(paths: Sequence[Path], gt_ids: dict[Path, int] | None, gt: str | None) -> list[int]:
    """Image ids of ``paths``: from the GT JSON when given, else 1..N."""
    if gt_ids is None:
        return list(range(1, len(paths) + 1))
    missing = [p for p in paths if p.resolve() not in gt_ids]
    if missing:
        raise DatasetError(f"{missing[0]}: not among the images of {gt} ({len(missing)} such files); "
                           f"check --image-root")
    return [gt_ids[p.resolve()] for p in paths]


def output_name(path: Path, base: Path) -> Path:
    """Where the annotated copy of ``path`` goes under ``images/``: its path below ``base``."""
    try:
        rel = path.resolve().relative_to(base)
    except ValueError:
        rel = Path(path.name)
    return rel if rel.suffix.lower() in WRITABLE_IMAGE else rel.with_suffix(rel.suffix + ".png")


def write_image(path: Path, image: np.ndarray) -> None:
    """Write an RGB uint8 image (format from the suffix) atomically."""
    ok = []
    atomic_write_with(path, lambda tmp: ok.append(cv2.imwrite(tmp, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))))
    if not ok[0]:
        raise ImageReadError(f"{path}: OpenCV could not write this image")


def detect_to_dir(
    weights: str | os.PathLike | Sequence[str | os.PathLike],
    sources: Sequence[str] = (),
    out: str | os.PathLike = "runs/detect/predict",
    *,
    model: str = COCO_MODEL,
    gt: str | None = None,
    image_root: str | None = None,
    score_thresh: float = 0.05,
    draw_thresh: float = 0.3,
    classes: Sequence[str] | None = None,
    max_det: int = 100,
    batch_size: int = 4,
    num_workers: int = 0,
    device: str = "auto",
    precision: str = "auto",
    save_images: bool = True,
    resume: bool = False,
    skip_invalid: bool = False,
    progress: bool = True,
    tta: bool = False,
    scales: Sequence[float] | None = None,
    fusion: str = "wbf",
    fusion_iou: float = 0.55,
) -> PredictSummary:
    """Detect objects in ``sources`` (or ``gt``'s images) and write the results under ``out``.

    ``score_thresh`` and ``max_det`` bound what the files hold; boxes drawn on the images need
    ``draw_thresh`` too. ``classes``: keep only these class names / category ids. Several
    ``weights``, ``tta`` (mirror image) or ``scales`` run an `EnsembleDetector` (``fusion``
    "wbf" or "nms" at ``fusion_iou``).
    """
    out = Path(out)
    gt_ids, gt_categories = read_gt(gt, image_root) if gt else (None, None)
    if not sources and gt_ids is None:
        raise DatasetError("no source given: pass image files, folders, globs or videos (or --gt)")
    images, videos = split_sources(sources) if sources else (sorted(gt_ids), [])
    ids = assign_image_ids(images, gt_ids, gt)
    dev = auto_device(device)
    sources_of_weights = [weights] if isinstance(weights, (str, os.PathLike)) else list(weights)
    members = [Detector(load_detector(w, dev, model=model, box_score_thresh=score_thresh,
                                      box_detections_per_img=max_det), dev, precision, classes)
               for w in sources_of_weights]
    loaded = members[0].loaded
    if gt_categories is not None:
        check_gt_categories(loaded, gt_categories, gt)
    detector: Detector | EnsembleDetector = members[0]
    if len(members) > 1 or tta or scales:
        detector = EnsembleDetector(members, flip=tta, scales=scales, fusion=fusion,
                                    iou_threshold=fusion_iou, max_det=max_det)
    log = RecordLog(out, resume)
    summary = PredictSummary(out, resumed=len(log.done))
    base = _common_parent(images)  # images/ mirrors the folders below the images' common one
    todo = [i for i, p in enumerate(images) if str(p) not in log.done]
    probes = {video: _probe_video(video) for video in videos}
    bar = progress_bar(total=len(todo) + sum(count for count, _ in probes.values()), unit="img",
                       desc="detect", enabled=progress)
    try:
        loader = DataLoader(ImageFiles([images[i] for i in todo]), batch_size=batch_size,
                            num_workers=num_workers, collate_fn=as_list)
        for batch in loader:
            bad = [item for item in batch if "error" in item]
            if bad and not skip_invalid:
                raise ImageReadError(f"{bad[0]['error']} (pass --skip-invalid to leave such files out)")
            summary.skipped += [item["error"] for item in bad]
            good = [item for item in batch if "error" not in item]
            detections = detector([item["image"] for item in good]) if good else []
            records = []
            for item, dets in zip(good, detections):
                path = item["path"]
                h, w = item["image"].shape[:2]
                records.append({"file": str(path), "image_id": ids[todo[item["index"]]], "width": w,
                                "height": h, "detections": _rounded(dets)})
                if save_images:
                    write_image(out / "images" / output_name(path, base),
                                _annotated(item["image"], dets, draw_thresh))
                    summary.annotated_images += 1
                summary.detections += len(dets)
            log.append(records)
            summary.images += len(good)
            bar.update(len(batch))
        next_id = max(ids, default=0) + 1
        finished_videos = {key.split("#")[0] for key in log.done if "#" in key}
        for video in videos:
            if str(video) in finished_videos:
                continue
            next_id = _detect_video(video, probes[video][1], detector, out, log, next_id, batch_size,
                                    draw_thresh, summary, bar)
    finally:
        bar.close()
        log.close()
    summary.files += [write_coco_results(log.path, out / "results.json"),
                      write_csv(log.path, out / "predictions.csv"), log.path]
    if summary.skipped:
        with atomic_open(out / "skipped_files.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(summary.skipped) + "\n")
        summary.files.append(out / "skipped_files.txt")
    return summary


def _rounded(dets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"bbox": [round(v, 3) for v in d["bbox"]], "class": d["class"],
             "category_id": d["category_id"], "score": round(d["score"], 6)} for d in dets]


def _annotated(image: np.ndarray, dets: list[dict[str, Any]], draw_thresh: float) -> np.ndarray:
    shown = [d for d in dets if d["score"] >= draw_thresh]
    return draw_detections(image, np.array([d["bbox"] for d in shown]).reshape(-1, 4),
                           [d["label"] for d in shown], [d["score"] for d in shown],
                           [d["class"] for d in shown])


def _common_parent(paths: Sequence[Path]) -> Path:
    if not paths:
        return Path.cwd()
    return Path(os.path.commonpath([p.resolve().parent for p in paths]))


def _probe_video(video: Path) -> tuple[int, float]:
    """(frame count as the container states it, frames per second) of a video file."""
    capture = cv2.VideoCapture(str(video))
    count, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return max(count, 0), fps or 25.0


def _video_batches(video: Path, batch_size: int) -> Iterator[list[np.ndarray]]:
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise ImageReadError(f"{video}: OpenCV cannot open this video")
    try:
        batch: list[np.ndarray] = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            batch.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        capture.release()


def _detect_video(video: Path, fps: float, detector: Detector, out: Path, log: RecordLog,
                  first_id: int, batch_size: int, draw_thresh: float, summary: PredictSummary,
                  bar: tqdm) -> int:
    """Annotate every frame into ``out/<stem>.mp4``; the frames' records join the log at the end."""
    target = out / f"{video.stem}.mp4"
    records: list[dict[str, Any]] = []
    frame_index = 0

    def write(tmp: str) -> None:
        nonlocal frame_index
        writer = None
        try:
            for frames in _video_batches(video, batch_size):
                for frame, dets in zip(frames, detector(frames)):
                    if writer is None:
                        h, w = frame.shape[:2]
                        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                    annotated = _annotated(frame, dets, draw_thresh)
                    writer.write(cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))
                    records.append({"file": str(video), "frame": frame_index,
                                    "image_id": first_id + frame_index, "width": frame.shape[1],
                                    "height": frame.shape[0], "detections": _rounded(dets)})
                    summary.detections += len(dets)
                    frame_index += 1
                bar.update(len(frames))
        finally:
            if writer is not None:
                writer.release()
        if frame_index == 0:
            raise ImageReadError(f"{video}: no frames could be read")

    atomic_write_with(target, write)
    log.append(records)
    summary.images += frame_index
    summary.files.append(target)
    return first_id + frame_index
