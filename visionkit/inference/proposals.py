"""Precompute a COCO set's region proposals into the cache and report their recall."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionkit.data.coco_detection import CocoDetection
from visionkit.data.proposal_cache import ProposalCache, precompute_proposals
from visionkit.detection import SelectiveSearch
from visionkit.evaluation.plots import plot_proposal_recall
from visionkit.evaluation.proposal_recall import RecallReport, proposal_recall
from visionkit.fileio import write_json


@dataclass
class ProposalRun:
    """What `proposals_to_dir` did: the cache folder, the counts and the recall report."""

    cache_folder: Path
    counts: dict[str, float]
    recall: RecallReport
    out_dir: Path


def proposals_to_dir(annotation_file: str | os.PathLike, image_root: str | os.PathLike | None,
                     cache_root: str | os.PathLike, out: str | os.PathLike,
                     settings: dict[str, Any], num_workers: int = 2) -> ProposalRun:
    """Fill the proposal cache for every image of a COCO file; write ``recall.json`` and ``recall.png``."""
    annotation_file = Path(annotation_file)
    dataset = CocoDetection(annotation_file, image_root if image_root is not None else annotation_file.parent)
    cache = ProposalCache(cache_root, SelectiveSearch(**settings))
    counts = precompute_proposals(dataset, cache, num_workers)
    report = proposal_recall([cache(r) for r in dataset.records],
                             [r.boxes[r.iscrowd == 0] for r in dataset.records])
    out = Path(out)
    write_json(out / "recall.json", {"annotations": str(annotation_file), "cache": str(cache.folder),
                                     "settings": cache.settings, **report.to_dict()})
    plot_proposal_recall(report, out / "recall.png")
    return ProposalRun(cache.folder, counts, report, out)
