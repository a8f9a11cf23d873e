"""pose-stream: real-time multi-person 2D pose estimation with HigherHRNet.

Heavy submodules load on first use, so `import pose_stream` stays cheap.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "build_model": "pose_stream.models",
    "load_checkpoint": "pose_stream.models",
    "export_onnx": "pose_stream.export",
    "PoseStreamError": "pose_stream.errors",
    "JointSet": "pose_stream.joints",
    "preprocess": "pose_stream.preprocess",
    "Transform": "pose_stream.preprocess",
    "decode": "pose_stream.decode",
    "Poses": "pose_stream.poses",
    "PoseEstimator": "pose_stream.estimator",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pose_stream' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


# `preprocess` and `decode` are functions of the public API and also the modules defining them. Importing
# such a module would set the package attribute to the module; keep the name meaning the function
# (the modules stay importable: `from pose_stream.decode import Decoder`).
_FUNCTION_NAMES = frozenset({"preprocess", "decode"})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTION_NAMES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
