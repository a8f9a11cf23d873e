"""Pose estimation as four stages: PoseEstimator (prepare, infer, aggregate, group) and its EstimatorConfig.
May import: pose_stream.{decoding, engine, models, joints, poses, devices, errors}; not pipeline/ or train/.
"""
from __future__ import annotations

from pose_stream.estimator.config import DEFAULT_MAX_ASPECT, EstimatorConfig
from pose_stream.estimator.stages import PoseEstimator
from pose_stream.estimator.passes import Prepared, RawOutputs

__all__ = ["DEFAULT_MAX_ASPECT", "EstimatorConfig", "PoseEstimator", "Prepared", "RawOutputs"]
