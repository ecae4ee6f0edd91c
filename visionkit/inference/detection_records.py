"""Detection results on disk: an append-only JSON-lines log, and the COCO JSON / CSV made from it.

``predictions.jsonl`` gets one complete line per finished image, flushed and fsynced per batch,
so a killed run loses at most the batch in flight; `--resume` reads it back (a torn last line
is cut off) and skips the images it holds. ``results.json`` (COCO results: original category
ids, xywh boxes) and ``predictions.csv`` are written from the log at the end, atomically and
streaming, so memory does not grow with the number of images.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from visionkit.errors import ConfigError
from visionkit.fileio import atomic_open

LOG_NAME = "predictions.jsonl"
CSV_FIELDS = ["file", "image_id", "frame", "class", "category_id", "score", "x1", "y1", "x2", "y2"]


class RecordLog:
    """The append-only per-image log of one prediction run (see the module docstring)."""

    def __init__(self, out_dir: str | os.PathLike, resume: bool = False) -> None:
        self.path = Path(out_dir) / LOG_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not resume:
            raise ConfigError(f"{self.path} holds an earlier run's results: pass --resume to continue "
                              f"it, or another --out")
        self.done: set[str] = set()
        if resume and self.path.exists():
            self._cut_torn_tail()
            self.done = {record_key(r) for r in read_records(self.path)}
        self._file = open(self.path, "a", encoding="utf-8")

    def _cut_torn_tail(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(end)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write ``records`` as complete lines and force them to disk."""
        if not records:
            return
        self._file.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the log file."""
        self._file.close()


def record_key(record: dict[str, Any]) -> str:
    """Identity of a record for resuming: its file (and frame, for videos)."""
    return record["file"] if record.get("frame") is None else f"{record['file']}#{record['frame']}"


def read_records(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The records of a ``predictions.jsonl`` log, one at a time."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def write_coco_results(log: str | os.PathLike, out: str | os.PathLike) -> Path:
    """COCO results JSON (``image_id, category_id, bbox [x, y, w, h], score``) from a log."""
    with atomic_open(out, "w", encoding="utf-8") as f:
        f.write("[")
        first = True
        for record in read_records(log):
            for det in record["detections"]:
                x1, y1, x2, y2 = det["bbox"]
                row = {"image_id": record["image_id"], "category_id": det["category_id"],
                       "bbox": [x1, y1, round(x2 - x1, 3), round(y2 - y1, 3)],  # no float noise
                       "score": det["score"]}
                f.write(("" if first else ",\n") + json.dumps(row))
                first = False
        f.write("]\n")
    return Path(out)


def write_csv(log: str | os.PathLike, out: str | os.PathLike) -> Path:
    """One CSV row per detection (xyxy pixels); images without detections have one empty row."""
    with atomic_open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for record in read_records(log):
            head = [record["file"], record["image_id"], record.get("frame", "")]
            if not record["detections"]:
                writer.writerow(head + [""] * (len(CSV_FIELDS) - len(head)))
            for det in record["detections"]:
                writer.writerow(head + [det["class"], det["category_id"], f"{det['score']:.6f}",
                                        *(f"{v:.2f}" for v in det["bbox"])])
    return Path(out)
