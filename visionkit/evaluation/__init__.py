"""Evaluation: COCO mAP (pycocotools or our fast exact backend), VOC AP, streaming detection mAP."""

from visionkit.evaluation.coco import CocoEvalResult, evaluate_coco
from visionkit.evaluation.detection_evaluator import DetectionEvaluator
from visionkit.evaluation.voc import average_precision, voc_ap, voc_map

__all__ = ["CocoEvalResult", "DetectionEvaluator", "average_precision", "evaluate_coco", "voc_ap",
           "voc_map"]
