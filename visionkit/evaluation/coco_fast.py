"""COCO bbox evaluation in vectorised numpy, bit for bit equal to pycocotools' evaluate/accumulate.

How it follows pycocotools without a Python loop per image or per object:

- Detections are grouped by (image, category) with one stable sort on (group, -score), so score
  ties keep file order as pycocotools' mergesort does, and each group is cut to its 100 best.
- IoUs are computed only between a detection and the GTs of its own group, with the float
  operations of ``maskUtils.iou`` (crowd GTs: intersection over the detection's area). Pairs below
  the lowest IoU threshold can never match and are dropped.
- Greedy matching runs in rounds: round r takes, in every group at once, the r-th detection that
  has any candidate pair, for all area ranges and IoU thresholds together. A detection takes the
  unmatched regular GT of highest IoU (ties: the later GT), else an ignored one (crowds match many).
- Accumulation walks each category's detections in the global score order. Interpolated precision
  at a recall threshold is the best precision from the first point reaching that recall onwards;
  that maximum is always at a true positive, so only true positives are evaluated.

A detection matched to a GT whose annotation id is 0 counts as unmatched, as in pycocotools
(which stores matches by id and tests them for truth).
"""

from __future__ import annotations

import numpy as np

from visionkit.evaluation.coco_inputs import CocoDetections, CocoGroundTruth
from visionkit.evaluation.coco_params import (
    AREA_RANGES,
    IOU_THRESHOLDS,
    MAX_DETS,
    RECALL_THRESHOLDS,
)

_EPS = np.spacing(1)
_PAIR_CHUNK = 1 << 21  # (detection, GT) pairs whose IoU is computed at once


def evaluate_bbox(gt: CocoGroundTruth, dt: CocoDetections) -> tuple[np.ndarray, np.ndarray]:
    """``precision`` [T, R, K, A, M] and ``recall`` [T, K, A, M] as pycocotools' ``accumulate``."""
    num_cats = len(gt.category_ids)
    g_key, g_cat, g_box, g_crowd, g_ignore, g_nonzero = _sorted_gt(gt, num_cats)
    d_key, d_cat, d_box, d_score, d_rank = _sorted_detections(dt, gt, num_cats)
    pair_det, pair_gt, pair_iou = _candidate_pairs(d_key, d_box, g_key, g_box, g_crowd)
    matches, ok, ign = _match(pair_det, pair_gt, pair_iou, d_key, g_crowd, g_ignore, g_nonzero)
    area = d_box[:, 2] * d_box[:, 3]
    outside = (area < AREA_RANGES[:, :1]) | (area > AREA_RANGES[:, 1:])
    return _accumulate(d_cat, d_score, d_rank, outside, matches, ok, ign, g_cat, g_ignore, num_cats)


def _sorted_gt(gt: CocoGroundTruth, num_cats: int) -> tuple[np.ndarray, ...]:
    """GT sorted by (image, category, file order): group key, category index, box, crowd,
    ignore flag per area range [A, G], and whether the annotation id is non-zero."""
    img = np.searchsorted(gt.image_ids, gt.image_id)
    cat = np.searchsorted(gt.category_ids, gt.category_id)
    key = img * num_cats + cat
    order = np.argsort(key, kind="stable")
    area, crowd = gt.area[order], gt.iscrowd[order]
    ignore = crowd | (area < AREA_RANGES[:, :1]) | (area > AREA_RANGES[:, 1:])
    return key[order], cat[order], gt.bbox[order], crowd, ignore, gt.ann_id[order] != 0


def _sorted_detections(dt: CocoDetections, gt: CocoGroundTruth, num_cats: int
                       ) -> tuple[np.ndarray, ...]:
    """Detections sorted by (image, category, -score, file order), each group cut to
    ``MAX_DETS[-1]``: group key, category index, box, score, rank within the group."""
    cat = np.searchsorted(gt.category_ids, dt.category_id)
    key = np.searchsorted(gt.image_ids, dt.image_id) * num_cats + cat
    order = _stable_order(key, -dt.score)
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else key
    rank = np.arange(len(key)) - np.repeat(starts, np.diff(np.r_[starts, len(key)]))
    keep = rank < MAX_DETS[-1]
    order = order[keep]
    return key[keep], cat[order], dt.bbox[order], dt.score[order], rank[keep]


def _candidate_pairs(d_key: np.ndarray, d_box: np.ndarray, g_key: np.ndarray, g_box: np.ndarray,
                     g_crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(detection, GT, IoU) for same-group pairs whose IoU reaches the lowest threshold."""
    start = np.searchsorted(g_key, d_key, side="left")
    count = np.searchsorted(g_key, d_key, side="right") - start
    dets = np.flatnonzero(count)
    cum = np.cumsum(count[dets])
    cuts = np.searchsorted(cum, np.arange(_PAIR_CHUNK, cum[-1] if len(cum) else 0, _PAIR_CHUNK))
    lowest = min(IOU_THRESHOLDS[0], 1 - 1e-10)
    out_d, out_g, out_iou = [], [], []
    for chunk in np.split(dets, cuts):
        c = count[chunk]
        first = np.cumsum(c) - c
        det = np.repeat(chunk, c)
        gi = np.repeat(start[chunk] - first, c) + np.arange(int(c.sum()))
        iou = _pair_iou(d_box[det], g_box[gi], g_crowd[gi])
        hit = iou >= lowest
        out_d.append(det[hit])
        out_g.append(gi[hit])
        out_iou.append(iou[hit])
    return np.concatenate(out_d), np.concatenate(out_g), np.concatenate(out_iou)


def _pair_iou(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of xywh box pairs with maskUtils' float operations; a crowd GT's union is the
    detection's area."""
    w = np.minimum(d[:, 2] + d[:, 0], g[:, 2] + g[:, 0]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3] + d[:, 1], g[:, 3] + g[:, 1]) - np.maximum(d[:, 1], g[:, 1])
    inter = w * h
    d_area = d[:, 2] * d[:, 3]
    union = np.where(crowd, d_area, d_area + g[:, 2] * g[:, 3] - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=(w > 0) & (h > 0))


def _match(pair_det: np.ndarray, pair_gt: np.ndarray, pair_iou: np.ndarray, d_key: np.ndarray,
           g_crowd: np.ndarray, g_ignore: np.ndarray, g_nonzero: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy matching. Returns the detections that match something and, for each of them and
    every (area range, IoU threshold), whether it is a true match (``ok``) and whether it matched
    an ignored GT (``ign``), both [C, A, T]."""
    num_areas, num_thr = len(AREA_RANGES), len(IOU_THRESHOLDS)
    cand, pair_c = np.unique(pair_det, return_inverse=True)
    ok = np.zeros((len(cand), num_areas, num_thr), dtype=bool)
    ign = np.zeros_like(ok)
    if not len(cand):
        return cand, ok, ign
    c_key = d_key[cand]
    new = np.r_[True, c_key[1:] != c_key[:-1]]
    rounds = np.arange(len(cand)) - np.flatnonzero(new)[np.cumsum(new) - 1]
    # Within a detection, pairs ascend by (IoU, GT order): the best eligible pair is the last one.
    order = np.lexsort((pair_gt, pair_iou, pair_c, rounds[pair_c]))
    pair_c, pair_gt, pair_iou = pair_c[order], pair_gt[order], pair_iou[order]
    bounds = np.searchsorted(rounds[pair_c], np.arange(rounds.max() + 2))
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)
    matched = np.zeros((len(g_crowd), num_areas, num_thr), dtype=bool)
    regular = ~g_ignore.T  # [G, A]
    for s0, s1 in zip(bounds[:-1], bounds[1:], strict=True):
        c, gp, n = pair_c[s0:s1], pair_gt[s0:s1], s1 - s0
        seg = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        eligible = ((pair_iou[s0:s1, None] >= thresholds)[:, None]
                    & (~matched[gp] | g_crowd[gp, None, None]))  # [n, A, T]
        # Score = position + 1, plus n for regular (not ignored) GTs so they always win.
        score = np.arange(1, n + 1)[:, None] + np.where(regular[gp], n, 0)
        best = np.maximum.reduceat(np.where(eligible, score[..., None], 0), seg, axis=0)
        d_i, a_i, t_i = np.nonzero(best)
        b = best[d_i, a_i, t_i]
        chosen = gp[np.where(b > n, b - n, b) - 1]
        matched[chosen, a_i, t_i] = True
        rows = c[seg][d_i]
        ok[rows, a_i, t_i] = g_nonzero[chosen]
        ign[rows, a_i, t_i] = ~regular[chosen, a_i]
    matched = (ok | ign).any(axis=(1, 2))  # others count exactly as unmatched detections
    return cand[matched], ok[matched], ign[matched]


def _accumulate(d_cat: np.ndarray, d_score: np.ndarray, d_rank: np.ndarray, outside: np.ndarray,
                matches: np.ndarray, ok: np.ndarray, ign: np.ndarray, g_cat: np.ndarray,
                g_ignore: np.ndarray, num_cats: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision [T, R, K, A, M] and recall [T, K, A, M] from the per-detection match flags.

    An unmatched detection is counted (true or false positive) unless it lies outside the area
    range, the same for every IoU threshold; only the few matched ones differ per threshold. So
    the count of counted detections up to a point is a cumulative sum over all detections plus
    sparse corrections at the matched ones.
    """
    num_thr, num_areas = len(IOU_THRESHOLDS), len(AREA_RANGES)
    precision = -np.ones((num_thr, len(RECALL_THRESHOLDS), num_cats, num_areas, len(MAX_DETS)))
    recall = -np.ones((num_thr, num_cats, num_areas, len(MAX_DETS)))
    npig = np.stack([np.bincount(g_cat[~g_ignore[a]], minlength=num_cats)
                     for a in range(num_areas)], axis=1)
    tp_min = _tp_needed(npig)
    present = npig > 0
    # Detections come in (image, category, -score, file) order; a stable sort on (category,
    # -score) gives pycocotools' order: score ties broken by image, then by rank in the image.
    order = _stable_order(d_cat, -d_score)
    match_index = np.full(len(d_cat), -1)
    match_index[matches] = np.arange(len(matches))
    segments = np.arange(num_thr * num_cats)
    for m, max_det in enumerate(MAX_DETS):
        sel = order[d_rank[order] < max_det]
        cat = d_cat[sel]
        seg_start = np.searchsorted(cat, np.arange(num_cats))
        mi = match_index[sel]
        mpos = np.flatnonzero(mi >= 0)
        mi = mi[mpos]
        for a in range(num_areas):
            out = outside[a, sel]
            base = np.zeros(len(sel) + 1, dtype=np.int64)  # base[i]: not-outside among [0, i)
            np.cumsum(~out, out=base[1:])
            ok_a, ign_a = ok[mi, a], ign[mi, a]  # [C, T]
            counted = ~(ign_a | (~ok_a & out[mpos, None]))
            delta = counted.astype(np.int64) - ~out[mpos, None]
            tp = ok_a & ~ign_a
            t_i, j = np.nonzero(((delta != 0) | tp).T)  # events, in (threshold, position) order
            pos, delta, tp = mpos[j], delta[j, t_i], tp[j, t_i]
            k = cat[pos]
            seg = t_i * num_cats + k
            corr = np.r_[0, np.cumsum(delta)]
            corr_before = corr[np.searchsorted(seg, segments)]
            n_counted = (base[pos + 1] - base[seg_start[k]]) + (corr[1:] - corr_before[seg])
            seg, n_counted = seg[tp], n_counted[tp]
            n_tp = np.bincount(seg, minlength=num_thr * num_cats)
            first = np.cumsum(n_tp) - n_tp
            tp_count = np.arange(1, len(seg) + 1) - first[seg]
            pr = tp_count / (n_counted.astype(np.float64) + _EPS)
            n_tp, first = n_tp.reshape(num_thr, num_cats), first.reshape(num_thr, num_cats)
            q = _interpolated(pr, n_tp, first, tp_min[:, a])
            precision[:, :, present[:, a], a, m] = q.transpose(0, 2, 1)[:, :, present[:, a]]
            recall[:, present[:, a], a, m] = (n_tp / np.maximum(npig[:, a], 1))[:, present[:, a]]
    return precision, recall


def _interpolated(pr: np.ndarray, n_tp: np.ndarray, first: np.ndarray, tp_min: np.ndarray
                  ) -> np.ndarray:
    """[T, K, R] interpolated precision: for each (threshold, category) segment of ``pr`` (the
    precision at each true positive, in score order), the max from the ``tp_min``-th one on."""
    at = np.maximum(tp_min, 1) - 1  # [K, R], index of the first true positive to include
    valid = (tp_min <= n_tp[..., None]) & (n_tp[..., None] > 0)
    idx = first[..., None] + np.minimum(at, n_tp[..., None])
    # Block r spans true positives [at_r, at_r+1): its max, then a running max from the right.
    block = np.maximum.reduceat(np.append(pr, 0.0), idx.ravel()).reshape(idx.shape)
    block[~valid] = 0
    q = np.maximum.accumulate(block[..., ::-1], axis=-1)[..., ::-1]
    return np.where(valid, q, 0.0)


def _stable_order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Indices sorting by (major, minor), ties in input order (``np.lexsort``, but faster)."""
    order = np.argsort(minor, kind="stable")
    return order[np.argsort(major[order], kind="stable")]


def _tp_needed(npig: np.ndarray) -> np.ndarray:
    """[K, A, R]: fewest true positives whose recall ``tp / npig`` (float64, as pycocotools)
    reaches each recall threshold."""
    n = np.where(npig > 0, npig, 1).astype(np.float64)[..., None]
    c = np.ceil(RECALL_THRESHOLDS * n)
    while (down := (c >= 1) & ((c - 1) / n >= RECALL_THRESHOLDS)).any():
        c -= down
    while (up := c / n < RECALL_THRESHOLDS).any():
        c += up
    return c.astype(np.int64)
