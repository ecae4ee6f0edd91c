"""VOC AP against a transcription of the classic devkit loop, and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visionkit.evaluation.voc import average_precision, voc_ap, voc_map


def _reference(dets: dict, gts: dict, thr: float, use_07: bool) -> float:
    """The devkit's voc_eval loop (continuous coordinates, stable sort) and its voc_ap."""
    recs = {i: {"bbox": np.asarray(g["boxes"], float).reshape(-1, 4),
                "difficult": np.asarray(g.get("difficult", np.zeros(len(g["boxes"]))), bool),
                "det": [False] * len(g["boxes"])} for i, g in gts.items()}
    npos = sum(int((~r["difficult"]).sum()) for r in recs.values())
    ids = [i for i, d in dets.items() for _ in range(len(d["scores"]))]
    bb_all = np.concatenate([np.asarray(d["boxes"], float).reshape(-1, 4) for d in dets.values()])
    conf = np.concatenate([np.asarray(d["scores"], float) for d in dets.values()])
    order = np.argsort(-conf, kind="stable")
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for d, j in enumerate(order):
        r, bb, ovmax = recs[ids[j]], bb_all[j], -np.inf
        g = r["bbox"]
        if g.size:
            iw = np.maximum(np.minimum(g[:, 2], bb[2]) - np.maximum(g[:, 0], bb[0]), 0.0)
            ih = np.maximum(np.minimum(g[:, 3], bb[3]) - np.maximum(g[:, 1], bb[1]), 0.0)
            inter = iw * ih
            union = ((bb[2] - bb[0]) * (bb[3] - bb[1])
                     + (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]) - inter)
            overlaps = inter / union
            ovmax, jmax = overlaps.max(), overlaps.argmax()
        if ovmax > thr:
            if not r["difficult"][jmax]:
                if not r["det"][jmax]:
                    tp[d], r["det"][jmax] = 1.0, True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec, prec = tp / npos, tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            ap += (0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])) / 11.0
        return ap
    mrec, mpre = np.concatenate(([0.0], rec, [1.0])), np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _random(seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    gts, dets = {}, {}
    for img in range(8):
        n = int(rng.integers(0, 5))
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], axis=1)
        gts[img] = {"boxes": boxes, "difficult": rng.random(n) < 0.2}
        m = int(rng.integers(0, 6))
        src = boxes[rng.integers(0, n, m)] if n else rng.uniform(0, 100, (m, 4))
        noisy = src + rng.normal(0, 4, (m, 4))
        dets[img] = {"boxes": noisy, "scores": np.round(rng.random(m), 1)}
    return dets, gts


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("use_07", [False, True])
def test_voc_ap_equals_the_devkit_loop(seed: int, use_07: bool) -> None:
    dets, gts = _random(seed)
    expected = _reference(dets, gts, 0.5, use_07)
    assert voc_ap(dets, gts, use_07_metric=use_07) == pytest.approx(expected, abs=1e-12)


def test_hand_computed_values() -> None:
    gts = {0: {"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]]}}
    dets = {0: {"boxes": [[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]],
                "scores": [0.9, 0.8, 0.7]}}
    # recall .5 .5 1, precision 1 .5 .667
    assert voc_ap(dets, gts) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert voc_ap(dets, gts, use_07_metric=True) == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert average_precision(np.array([1.0]), np.array([1.0])) == 1.0


def test_difficult_objects_are_neither_hits_nor_misses() -> None:
    gts = {0: {"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "difficult": [False, True]}}
    dets = {0: {"boxes": [[20, 20, 30, 30], [0, 0, 10, 10]], "scores": [0.9, 0.8]}}
    assert voc_ap(dets, gts) == pytest.approx(1.0)
    assert np.isnan(voc_ap(dets, {0: {"boxes": [[0, 0, 1, 1]], "difficult": [True]}}))


def test_voc_map_per_label_on_detector_outputs() -> None:
    targets = {7: {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
                   "labels": torch.tensor([1, 2])}}
    dets = {7: {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
                "labels": torch.tensor([1, 1]), "scores": torch.tensor([0.9, 0.8])}}
    assert voc_map(dets, targets) == {1: pytest.approx(1.0), 2: 0.0}
