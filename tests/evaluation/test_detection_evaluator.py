"""DetectionEvaluator: streaming equals one-shot evaluation; DDP gathering (mocked and real)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from visionkit.evaluation import DetectionEvaluator, evaluate_coco

from ._cases import random_case

SEED = 3  # integer boxes: xyxy <-> xywh conversions are exact


def _batches(seed: int = SEED) -> tuple[dict, list, dict[int, int], list[tuple[list, list]]]:
    """A random case as detector outputs/targets (contiguous labels), in batches of 3 images."""
    gt, results = random_case(seed)
    cat_ids = [c["id"] for c in gt["categories"]]
    label_to_category = {i + 1: c for i, c in enumerate(cat_ids)}

    def xyxy(rows: list[dict[str, Any]]) -> torch.Tensor:
        b = torch.tensor([r["bbox"] for r in rows], dtype=torch.float64).reshape(-1, 4)
        return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1).float()

    def labels(rows: list[dict[str, Any]]) -> torch.Tensor:
        return torch.tensor([cat_ids.index(r["category_id"]) + 1 for r in rows], dtype=torch.long)

    items = []
    for img in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == img["id"]]
        dets = [r for r in results if r["image_id"] == img["id"]]
        items.append((
            {"boxes": xyxy(dets), "labels": labels(dets),
             "scores": torch.tensor([r["score"] for r in dets])},
            {"boxes": xyxy(anns), "labels": labels(anns), "image_id": torch.tensor(img["id"]),
             "iscrowd": torch.tensor([a["iscrowd"] for a in anns]),
             "area": torch.tensor([a["area"] for a in anns], dtype=torch.float64)}))
    batches = [([d for d, _ in items[i:i + 3]], [t for _, t in items[i:i + 3]])
               for i in range(0, len(items), 3)]
    # scores went through float32 in the tensors: compare against the same values
    expected_results = [{**r, "score": float(torch.tensor(r["score"]))} for r in results]
    return gt, expected_results, label_to_category, batches


def test_streaming_equals_evaluate_coco() -> None:
    gt, results, label_to_category, batches = _batches()
    evaluator = DetectionEvaluator(label_to_category,
                                   category_names={c["id"]: c["name"] for c in gt["categories"]})
    for dets, targets in batches:
        evaluator.update(dets, targets)
    result = evaluator.compute()
    assert result.stats == evaluate_coco(gt, results).stats
    assert result.category_names == tuple(c["name"] for c in gt["categories"])
    assert evaluator.compute().stats == result.stats  # compute does not consume the state
    reference = DetectionEvaluator(label_to_category, backend="pycocotools")
    for dets, targets in batches:
        reference.update(dets, targets)
    assert reference.compute().stats == result.stats
    evaluator.reset()
    assert set(evaluator.compute().stats.values()) == {-1.0}


def test_without_label_map_labels_are_category_ids() -> None:
    _, _, label_to_category, batches = _batches()
    mapped = DetectionEvaluator(label_to_category)
    plain = DetectionEvaluator()
    for dets, targets in batches:
        mapped.update(dets, targets)
        plain.update(dets, targets)
    assert mapped.compute().stats == plain.compute().stats


def test_gathers_every_process_share_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two mocked ranks; rank 1 also saw rank 0's last image (a padded DistributedSampler)."""
    gt, results, label_to_category, batches = _batches()
    ranks = [DetectionEvaluator(label_to_category), DetectionEvaluator(label_to_category)]
    for i, (dets, targets) in enumerate(batches):
        ranks[i % 2].update(dets, targets)
    ranks[1].update(batches[0][0][-1:], batches[0][1][-1:])
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)

    def all_gather_object(out: list, obj: Any) -> None:
        out[:] = [r._images for r in ranks]

    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    assert ranks[0].compute().stats == evaluate_coco(gt, results).stats


def _ddp_worker(rank: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        _, _, label_to_category, batches = _batches()
        evaluator = DetectionEvaluator(label_to_category)
        for dets, targets in batches[rank::2]:
            evaluator.update(dets, targets)
        stats = evaluator.compute().stats
        if rank == 0:
            Path(out_file).write_text(json.dumps(stats))
    finally:
        dist.destroy_process_group()


def test_real_two_process_gather(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gt, results, _, _ = _batches()
    out = tmp_path / "stats.json"
    # spawned workers unpickle _ddp_worker by its module name (`evaluation.test_...`): let them find it
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    mp.spawn(_ddp_worker, args=(str(tmp_path / "init"), str(out)), nprocs=2)
    assert json.loads(out.read_text()) == evaluate_coco(gt, results).stats
