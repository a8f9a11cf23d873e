"""pose-stream: real-time multi-person 2D pose estimation with HigherHRNet.

Heavy submodules load on first use, so `import pose_stream` stays cheap.
"""
from __future__ import annotations

from pose_stream._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "build_model": "pose_stream.models",
    "load_checkpoint": "pose_stream.models",
    "export_onnx": "pose_stream.export",
    "PoseStreamError": "pose_stream.errors",
    "JointSet": "pose_stream.joints",
    "Pipeline": "pose_stream.pipeline",
    "preprocess": "pose_stream.decoding.preprocess",
    "Transform": "pose_stream.decoding.preprocess",
    "decode": "pose_stream.decoding",
    "Poses": "pose_stream.poses",
    "PoseEstimator": "pose_stream.estimator",
    "EstimatorConfig": "pose_stream.estimator",
    "demo_model_path": "pose_stream.models.demo",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, lambda: list(globals()))
