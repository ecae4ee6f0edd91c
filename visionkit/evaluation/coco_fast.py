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

Shape letters in the comments: G ground-truth objects, D detections (after the per-group cut),
P candidate (detection, GT) pairs, C detections with a match, K categories, A area ranges,
T IoU thresholds, R recall thresholds, M max-detection limits. A "group" is one
(image, category) pair, numbered ``image_index * K + category_index``.
"""

from __future__ import annotations

from typing import NamedTuple

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


class _SortedGroundTruth(NamedTuple):
    """GT objects sorted by (image, category, file order)."""

    group: np.ndarray  # [G] int64, ascending
    category: np.ndarray  # [G] int64 category index
    box: np.ndarray  # [G, 4] float64 xywh
    crowd: np.ndarray  # [G] bool
    ignore: np.ndarray  # [A, G] bool: crowd, or area outside area range a
    nonzero_id: np.ndarray  # [G] bool: annotation id != 0 (a match to id 0 does not count)


class _SortedDetections(NamedTuple):
    """Detections sorted by (image, category, -score, file order), each group cut to its best."""

    group: np.ndarray  # [D] int64, ascending
    category: np.ndarray  # [D] int64 category index
    box: np.ndarray  # [D, 4] float64 xywh
    score: np.ndarray  # [D] float64
    rank: np.ndarray  # [D] int64, position within its group (0 = highest score)


class _CandidatePairs(NamedTuple):
    """Same-group (detection, GT) pairs whose IoU reaches the lowest IoU threshold."""

    detection: np.ndarray  # [P] int64 index into _SortedDetections
    gt: np.ndarray  # [P] int64 index into _SortedGroundTruth
    iou: np.ndarray  # [P] float64


class _Matches(NamedTuple):
    """The detections that matched some GT, with per (area range, IoU threshold) flags."""

    detection: np.ndarray  # [C] int64 index into _SortedDetections, ascending
    true_match: np.ndarray  # [C, A, T] bool: matched a regular GT with a non-zero id
    ignored_match: np.ndarray  # [C, A, T] bool: matched an ignored GT (crowd or out of area range)


def evaluate_bbox(gt: CocoGroundTruth, dt: CocoDetections) -> tuple[np.ndarray, np.ndarray]:
    """``precision`` [T, R, K, A, M] and ``recall`` [T, K, A, M] as pycocotools' ``accumulate``."""
    num_cats = len(gt.category_ids)
    gts = _sorted_gt(gt, num_cats)
    dets = _sorted_detections(dt, gt, num_cats)
    pairs = _candidate_pairs(dets, gts)
    matches = _match(pairs, dets.group, gts)
    det_area = dets.box[:, 2] * dets.box[:, 3]  # [D]
    outside_area = (det_area < AREA_RANGES[:, :1]) | (det_area > AREA_RANGES[:, 1:])  # [A, D] bool
    return _accumulate(dets, outside_area, matches, gts, num_cats)


def _sorted_gt(gt: CocoGroundTruth, num_cats: int) -> _SortedGroundTruth:
    """GT sorted by (image, category, file order), with its ignore flags per area range."""
    image_index = np.searchsorted(gt.image_ids, gt.image_id)  # [G]
    category = np.searchsorted(gt.category_ids, gt.category_id)  # [G]
    group = image_index * num_cats + category  # [G]
    order = np.argsort(group, kind="stable")  # [G]
    area, crowd = gt.area[order], gt.iscrowd[order]  # [G] float64, [G] bool
    ignore = crowd | (area < AREA_RANGES[:, :1]) | (area > AREA_RANGES[:, 1:])  # [A, G] bool
    return _SortedGroundTruth(group=group[order], category=category[order], box=gt.bbox[order],
                              crowd=crowd, ignore=ignore, nonzero_id=gt.ann_id[order] != 0)


def _sorted_detections(dt: CocoDetections, gt: CocoGroundTruth, num_cats: int) -> _SortedDetections:
    """Detections sorted by (image, category, -score, file order), each group cut to
    ``MAX_DETS[-1]``."""
    category = np.searchsorted(gt.category_ids, dt.category_id)  # [N] all detections
    group = np.searchsorted(gt.image_ids, dt.image_id) * num_cats + category  # [N]
    order = _stable_order(group, -dt.score)  # [N]
    group = group[order]  # [N] ascending
    group_start = (np.flatnonzero(np.r_[True, group[1:] != group[:-1]])  # [groups]
                   if len(group) else group)
    group_size = np.diff(np.r_[group_start, len(group)])  # [groups]
    rank = np.arange(len(group)) - np.repeat(group_start, group_size)  # [N]
    keep = rank < MAX_DETS[-1]  # [N] bool
    order = order[keep]  # [D]
    return _SortedDetections(group=group[keep], category=category[order], box=dt.bbox[order],
                             score=dt.score[order], rank=rank[keep])


def _candidate_pairs(dets: _SortedDetections, gts: _SortedGroundTruth) -> _CandidatePairs:
    """(detection, GT, IoU) for same-group pairs whose IoU reaches the lowest threshold."""
    gt_start = np.searchsorted(gts.group, dets.group, side="left")  # [D] first GT of the group
    gt_count = np.searchsorted(gts.group, dets.group, side="right") - gt_start  # [D]
    dets_with_gt = np.flatnonzero(gt_count)  # [D'] detections with any GT in their group
    pairs_so_far = np.cumsum(gt_count[dets_with_gt])  # [D']
    chunk_cuts = np.searchsorted(  # positions in dets_with_gt where a new chunk starts
        pairs_so_far, np.arange(_PAIR_CHUNK, pairs_so_far[-1] if len(pairs_so_far) else 0, _PAIR_CHUNK))
    lowest = min(IOU_THRESHOLDS[0], 1 - 1e-10)
    out_det, out_gt, out_iou = [], [], []
    for chunk in np.split(dets_with_gt, chunk_cuts):
        count = gt_count[chunk]  # [d]
        first_pair = np.cumsum(count) - count  # [d] first pair of each detection in the chunk
        pair_det = np.repeat(chunk, count)  # [p]
        pair_gt = np.repeat(gt_start[chunk] - first_pair, count) + np.arange(int(count.sum()))  # [p]
        iou = _pair_iou(dets.box[pair_det], gts.box[pair_gt], gts.crowd[pair_gt])  # [p]
        keep = iou >= lowest  # [p] bool
        out_det.append(pair_det[keep])
        out_gt.append(pair_gt[keep])
        out_iou.append(iou[keep])
    return _CandidatePairs(detection=np.concatenate(out_det), gt=np.concatenate(out_gt),
                           iou=np.concatenate(out_iou))


def _pair_iou(det_box: np.ndarray, gt_box: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of xywh box pairs ``[p, 4]`` with maskUtils' float operations; a crowd GT's union is
    the detection's area."""
    overlap_w = (np.minimum(det_box[:, 2] + det_box[:, 0], gt_box[:, 2] + gt_box[:, 0])  # [p]
                 - np.maximum(det_box[:, 0], gt_box[:, 0]))
    overlap_h = (np.minimum(det_box[:, 3] + det_box[:, 1], gt_box[:, 3] + gt_box[:, 1])  # [p]
                 - np.maximum(det_box[:, 1], gt_box[:, 1]))
    inter = overlap_w * overlap_h  # [p]
    det_area = det_box[:, 2] * det_box[:, 3]  # [p]
    union = np.where(crowd, det_area, det_area + gt_box[:, 2] * gt_box[:, 3] - inter)  # [p]
    return np.divide(inter, union, out=np.zeros_like(inter),  # [p]
                     where=(overlap_w > 0) & (overlap_h > 0))


def _match(pairs: _CandidatePairs, det_group: np.ndarray, gts: _SortedGroundTruth) -> _Matches:
    """Greedy matching of every detection with a candidate pair, for every (area range, IoU
    threshold) at once. ``det_group`` [D] is each detection's (image, category) group."""
    num_areas, num_thr = len(AREA_RANGES), len(IOU_THRESHOLDS)
    # Candidates: detections with at least one pair; pair_candidate indexes them.
    candidates, pair_candidate = np.unique(pairs.detection, return_inverse=True)  # [C0], [P]
    true_match = np.zeros((len(candidates), num_areas, num_thr), dtype=bool)  # [C0, A, T]
    ignored_match = np.zeros_like(true_match)  # [C0, A, T] bool
    if not len(candidates):
        return _Matches(candidates, true_match, ignored_match)
    candidate_group = det_group[candidates]  # [C0]
    group_start = np.r_[True, candidate_group[1:] != candidate_group[:-1]]  # [C0] bool
    # A candidate's round is its position among its group's candidates (in score order).
    round_of = (np.arange(len(candidates))  # [C0]
                - np.flatnonzero(group_start)[np.cumsum(group_start) - 1])
    # Sort pairs by (round, candidate, IoU, GT order): within a candidate, pairs ascend by
    # (IoU, GT order), so the best eligible pair is the last one.
    order = np.lexsort((pairs.gt, pairs.iou, pair_candidate, round_of[pair_candidate]))  # [P]
    pair_candidate, pair_gt, pair_iou = pair_candidate[order], pairs.gt[order], pairs.iou[order]  # [P]
    round_bounds = np.searchsorted(round_of[pair_candidate], np.arange(round_of.max() + 2))  # [rounds + 1]
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)  # [T]
    gt_taken = np.zeros((len(gts.crowd), num_areas, num_thr), dtype=bool)  # [G, A, T]
    regular = ~gts.ignore.T  # [G, A] bool
    for start, stop in zip(round_bounds[:-1], round_bounds[1:], strict=True):
        # This round's pairs: n of them, for the d candidates that take their turn now.
        round_candidate, round_gt, n = pair_candidate[start:stop], pair_gt[start:stop], stop - start  # [n]
        cand_start = np.flatnonzero(np.r_[True, round_candidate[1:] != round_candidate[:-1]])  # [d]
        eligible = ((pair_iou[start:stop, None] >= thresholds)[:, None]
                    & (~gt_taken[round_gt] | gts.crowd[round_gt, None, None]))  # [n, A, T] bool
        # Score = position + 1, plus n for regular (not ignored) GTs so they always win.
        score = np.arange(1, n + 1)[:, None] + np.where(regular[round_gt], n, 0)  # [n, A]
        best = np.maximum.reduceat(np.where(eligible, score[..., None], 0), cand_start, axis=0)  # [d, A, T]
        cand_i, area_i, thr_i = np.nonzero(best)  # [m] each: the (candidate, A, T) that matched
        best_score = best[cand_i, area_i, thr_i]  # [m]
        chosen_gt = round_gt[np.where(best_score > n, best_score - n, best_score) - 1]  # [m]
        gt_taken[chosen_gt, area_i, thr_i] = True
        rows = round_candidate[cand_start][cand_i]  # [m] index into candidates
        true_match[rows, area_i, thr_i] = gts.nonzero_id[chosen_gt]
        ignored_match[rows, area_i, thr_i] = ~regular[chosen_gt, area_i]
    has_match = (true_match | ignored_match).any(axis=(1, 2))  # [C0] bool; others count as unmatched
    return _Matches(candidates[has_match], true_match[has_match], ignored_match[has_match])


def _accumulate(dets: _SortedDetections, outside_area: np.ndarray, matches: _Matches,
                gts: _SortedGroundTruth, num_cats: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision [T, R, K, A, M] and recall [T, K, A, M] from the per-detection match flags.

    ``outside_area`` [A, D] says which detections lie outside each area range. An unmatched
    detection is counted (true or false positive) unless it lies outside the area range, the
    same for every IoU threshold; only the few matched ones differ per threshold. So the count
    of counted detections up to a point is a cumulative sum over all detections plus sparse
    corrections at the matched ones.
    """
    num_thr, num_areas = len(IOU_THRESHOLDS), len(AREA_RANGES)
    precision = -np.ones((num_thr, len(RECALL_THRESHOLDS), num_cats, num_areas, len(MAX_DETS)))
    recall = -np.ones((num_thr, num_cats, num_areas, len(MAX_DETS)))
    num_positive = np.stack([np.bincount(gts.category[~gts.ignore[a]], minlength=num_cats)  # [K, A]
                             for a in range(num_areas)], axis=1)
    tp_needed = _tp_needed(num_positive)  # [K, A, R]
    has_gt = num_positive > 0  # [K, A] bool
    # Detections come in (image, category, -score, file) order; a stable sort on (category,
    # -score) gives pycocotools' order: score ties broken by image, then by rank in the image.
    score_order = _stable_order(dets.category, -dets.score)  # [D]
    match_row = np.full(len(dets.category), -1)  # [D] row in `matches`, -1 when unmatched
    match_row[matches.detection] = np.arange(len(matches.detection))
    all_segments = np.arange(num_thr * num_cats)  # [T * K] segment = threshold * K + category
    for m, max_det in enumerate(MAX_DETS):
        kept = score_order[dets.rank[score_order] < max_det]  # [S] in (category, -score) order
        kept_cat = dets.category[kept]  # [S] ascending
        cat_start = np.searchsorted(kept_cat, np.arange(num_cats))  # [K] first position of each
        kept_row = match_row[kept]  # [S]
        matched_pos = np.flatnonzero(kept_row >= 0)  # [Cm] positions in `kept` with a match
        matched_row = kept_row[matched_pos]  # [Cm] rows in `matches`
        for a in range(num_areas):
            outside = outside_area[a, kept]  # [S] bool
            counted_before = np.zeros(len(kept) + 1, dtype=np.int64)  # [S + 1]: not outside in [0, i)
            np.cumsum(~outside, out=counted_before[1:])
            true_a = matches.true_match[matched_row, a]  # [Cm, T] bool
            ignored_a = matches.ignored_match[matched_row, a]  # [Cm, T] bool
            counted = ~(ignored_a | (~true_a & outside[matched_pos, None]))  # [Cm, T] bool
            # Correction to the all-threshold count: +1, 0 or -1 per matched detection.
            delta = counted.astype(np.int64) - ~outside[matched_pos, None]  # [Cm, T] int64
            is_tp = true_a & ~ignored_a  # [Cm, T] bool
            # Events: corrections and true positives, in (threshold, position) order.
            event_thr, event_j = np.nonzero(((delta != 0) | is_tp).T)  # [E], [E]
            pos = matched_pos[event_j]  # [E] position in `kept`
            delta, is_tp = delta[event_j, event_thr], is_tp[event_j, event_thr]  # [E], [E]
            category = kept_cat[pos]  # [E]
            segment = event_thr * num_cats + category  # [E] ascending
            correction = np.r_[0, np.cumsum(delta)]  # [E + 1]
            correction_before = correction[np.searchsorted(segment, all_segments)]  # [T * K]
            num_counted = ((counted_before[pos + 1] - counted_before[cat_start[category]])  # [E]
                           + (correction[1:] - correction_before[segment]))
            segment, num_counted = segment[is_tp], num_counted[is_tp]  # [TP], [TP]
            num_tp = np.bincount(segment, minlength=num_thr * num_cats)  # [T * K]
            first_tp = np.cumsum(num_tp) - num_tp  # [T * K] first true positive of each segment
            tp_so_far = np.arange(1, len(segment) + 1) - first_tp[segment]  # [TP]
            precision_at_tp = tp_so_far / (num_counted.astype(np.float64) + _EPS)  # [TP]
            num_tp = num_tp.reshape(num_thr, num_cats)  # [T, K]
            first_tp = first_tp.reshape(num_thr, num_cats)  # [T, K]
            interpolated = _interpolated(precision_at_tp, num_tp, first_tp, tp_needed[:, a])  # [T, K, R]
            present = has_gt[:, a]  # [K] bool
            precision[:, :, present, a, m] = interpolated.transpose(0, 2, 1)[:, :, present]  # [T, R, K']
            recall[:, present, a, m] = (num_tp / np.maximum(num_positive[:, a], 1))[:, present]  # [T, K']
    return precision, recall


def _interpolated(precision_at_tp: np.ndarray, num_tp: np.ndarray, first_tp: np.ndarray,
                  tp_needed: np.ndarray) -> np.ndarray:
    """[T, K, R] interpolated precision: for each (threshold, category) segment of
    ``precision_at_tp`` (the precision at each true positive, in score order; segment starts
    ``first_tp`` [T, K], lengths ``num_tp`` [T, K]), the max from the ``tp_needed``-th one on."""
    start = np.maximum(tp_needed, 1) - 1  # [K, R], index of the first true positive to include
    valid = (tp_needed <= num_tp[..., None]) & (num_tp[..., None] > 0)  # [T, K, R] bool
    block_start = first_tp[..., None] + np.minimum(start, num_tp[..., None])  # [T, K, R]
    # Block r spans true positives [start_r, start_r+1): its max, then a running max from the right.
    block = (np.maximum.reduceat(np.append(precision_at_tp, 0.0), block_start.ravel())  # [T, K, R]
             .reshape(block_start.shape))
    block[~valid] = 0
    running_max = np.maximum.accumulate(block[..., ::-1], axis=-1)[..., ::-1]  # [T, K, R]
    return np.where(valid, running_max, 0.0)  # [T, K, R]


def _stable_order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Indices sorting by (major, minor), ties in input order (``np.lexsort``, but faster)."""
    order = np.argsort(minor, kind="stable")
    return order[np.argsort(major[order], kind="stable")]


def _tp_needed(num_positive: np.ndarray) -> np.ndarray:
    """[K, A, R]: fewest true positives whose recall ``tp / num_positive`` (float64, as
    pycocotools) reaches each recall threshold."""
    n = np.where(num_positive > 0, num_positive, 1).astype(np.float64)[..., None]  # [K, A, 1]
    count = np.ceil(RECALL_THRESHOLDS * n)  # [K, A, R] float64
    while (down := (count >= 1) & ((count - 1) / n >= RECALL_THRESHOLDS)).any():
        count -= down
    while (up := count / n < RECALL_THRESHOLDS).any():
        count += up
    return count.astype(np.int64)
