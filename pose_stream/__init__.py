"""pose-stream: real-time multi-person 2D pose estimation with HigherHRNet.

Heavy submodules load on first use, so `import pose_stream` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "build_model": "pose_stream.models",
    "load_checkpoint": "pose_stream.models",
    "export_onnx": "pose_stream.export",
    "PoseStreamError": "pose_stream.errors",
    "JointSet": "pose_stream.joints",
    "Pipeline": "pose_stream.pipeline",
    "preprocess": "pose_stream.preprocessing",
    "Transform": "pose_stream.preprocessing",
    "decode": "pose_stream.decoding",
    "Poses": "pose_stream.poses",
    "PoseEstimator": "pose_stream.estimator",
    "demo_model_path": "pose_stream.train.demo",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pose_stream' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))

