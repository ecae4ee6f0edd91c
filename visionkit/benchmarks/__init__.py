"""Benchmarks printed as JSON; `visionkit benchmark NAME` and `tools/benchmark.py NAME` run them."""

from __future__ import annotations

# name -> module exposing `run(argv: list[str]) -> dict` (imported lazily).
BENCHMARKS: dict[str, str] = {
    "transfer": "visionkit.benchmarks.transfer",
    "ops": "visionkit.benchmarks.ops",
    "coco-eval": "visionkit.benchmarks.coco_eval",
    "faster-rcnn": "visionkit.benchmarks.detection",
    "gradcam": "visionkit.benchmarks.gradcam",
    "predict-memory": "visionkit.benchmarks.predict_memory",
    "train-step": "visionkit.benchmarks.train_step",
    "rcnn": "visionkit.benchmarks.rcnn",
    "selective-search": "visionkit.benchmarks.selective_search",
    "detect-latency": "visionkit.benchmarks.detect_latency",
    "detect-train-step": "visionkit.benchmarks.detect_train_step",
    "data": "visionkit.benchmarks.data_pipeline",
    "pretrained-detection": "visionkit.benchmarks.pretrained_detection",
    "ensemble": "visionkit.benchmarks.ensemble",
    "int8": "visionkit.benchmarks.int8",
    "time-to-map": "visionkit.benchmarks.time_to_map",
}
