"""COCO detection evaluation parameters: pycocotools' defaults (`Params.setDetParams`)."""

from __future__ import annotations

import numpy as np

# linspace, not arange: pycocotools relies on 0.5 and 0.75 being exact members of this array.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
# [lo, hi] inclusive on both ends; an object is outside a range when area < lo or area > hi.
AREA_RANGES = np.array([[0**2, 1e5**2], [0**2, 32**2], [32**2, 96**2], [96**2, 1e5**2]],
                       dtype=np.float64)
AREA_LABELS = ("all", "small", "medium", "large")
MAX_DETS = (1, 10, 100)

# The 12 summary numbers in the order of pycocotools' `COCOeval.stats`:
# (name, average precision?, IoU threshold or None for the 0.50:0.95 mean, area label, maxDets).
STAT_SPECS: tuple[tuple[str, bool, float | None, str, int], ...] = (
    ("AP", True, None, "all", 100),
    ("AP50", True, 0.5, "all", 100),
    ("AP75", True, 0.75, "all", 100),
    ("APs", True, None, "small", 100),
    ("APm", True, None, "medium", 100),
    ("APl", True, None, "large", 100),
    ("AR1", False, None, "all", 1),
    ("AR10", False, None, "all", 10),
    ("AR100", False, None, "all", 100),
    ("ARs", False, None, "small", 100),
    ("ARm", False, None, "medium", 100),
    ("ARl", False, None, "large", 100),
)
STAT_NAMES = tuple(spec[0] for spec in STAT_SPECS)
