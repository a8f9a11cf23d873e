"""Accuracy: COCO keypoint evaluation (AP/AR with pycocotools), the COCO results format, and where the AP goes.
May import: pycocotools, motmetrics and pose_stream.{joints, poses, oks, errors}; estimators are passed in, not built here.
"""
from __future__ import annotations

from pose_stream.evaluation.annotations import KeypointAnnotations, load_keypoint_annotations
from pose_stream.evaluation.coco import STAT_NAMES, EvalReport, evaluate, poses_to_results, write_results

__all__ = [
    "STAT_NAMES", "EvalReport", "KeypointAnnotations", "evaluate", "load_keypoint_annotations",
    "poses_to_results", "write_results",
]
