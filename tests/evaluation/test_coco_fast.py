"""The fast backend against pycocotools: seeded random cases and hypothesis-generated ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ._cases import both_backends, random_case

SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_fast_equals_pycocotools_on_random_cases(seed: int) -> None:
    gt, results = random_case(seed)
    fast, ref = both_backends(gt, results)
    np.testing.assert_array_equal(fast.precision, ref.precision)
    np.testing.assert_array_equal(fast.recall, ref.recall)


def test_random_cases_cover_the_edge_cases() -> None:
    cases = [random_case(seed) for seed in SEEDS]
    anns = [a for gt, _ in cases for a in gt["annotations"]]
    assert sum(a["iscrowd"] for a in anns) > 20
    areas = np.array([a["area"] for a in anns])
    assert (areas < 32**2).sum() > 50 and ((areas > 32**2) & (areas < 96**2)).sum() > 50
    assert (areas > 96**2).sum() > 50 and (areas == 32**2).any() and (areas == 96**2).any()
    assert (areas == 0).any()
    without_gt = [{c["id"] for c in gt["categories"]}
                  - {a["category_id"] for a in gt["annotations"]} for gt, _ in cases]
    assert sum(bool(s) for s in without_gt) > 30
    no_dets = [{i["id"] for i in gt["images"]} - {r["image_id"] for r in res} for gt, res in cases]
    assert sum(bool(s) for s in no_dets) > 10
    tied = [len({r["score"] for r in res}) < len(res) for _, res in cases]
    assert sum(tied) > 25
    per_group = [np.unique([(r["image_id"], r["category_id"]) for r in res], axis=0,
                           return_counts=True)[1].max() for _, res in cases if res]
    assert max(per_group) > 100


_BOX = st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(-2, 12), st.integers(-2, 12))
_GT = st.tuples(st.integers(0, 2), st.integers(0, 1), _BOX, st.booleans())
_DET = st.tuples(st.integers(0, 2), st.integers(0, 1), _BOX, st.sampled_from([0.1, 0.5, 0.9]))


@settings(max_examples=40, deadline=None)
@given(st.lists(_GT, max_size=8), st.lists(_DET, max_size=14), st.sampled_from([1, 4, 10]))
def test_fast_equals_pycocotools_on_small_grids(gts: list, dets: list, scale: int) -> None:
    """Integer boxes on a small grid: many IoU and score ties, crowds, all area ranges, and
    degenerate boxes (zero or negative width/height)."""
    gt = {"images": [{"id": i + 1} for i in range(3)],
          "categories": [{"id": 5, "name": "a"}, {"id": 9, "name": "b"}],
          "annotations": [{"id": n + 1, "image_id": i + 1, "category_id": (5, 9)[c],
                           "bbox": [v * scale for v in box], "area": box[2] * box[3] * scale**2,
                           "iscrowd": int(crowd)} for n, (i, c, box, crowd) in enumerate(gts)]}
    results = [{"image_id": i + 1, "category_id": (5, 9)[c], "bbox": [v * scale for v in box],
                "score": s} for i, c, box, s in dets]
    fast, ref = both_backends(gt, results)
    np.testing.assert_array_equal(fast.precision, ref.precision)
