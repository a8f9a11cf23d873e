"""Decoding kernels: heatmap aggregation and candidates (NumPy reference, Numba, CUDA) and grouping.

Entry points load their modules on first use (Numba compiles, pycuda is optional).
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ScaleOutputs": "pose_stream.kernels.aggregate_ref",
    "aggregate_reference": "pose_stream.kernels.aggregate_ref",
    "refine_peaks": "pose_stream.kernels.aggregate_ref",
    "aggregate_numba": "pose_stream.kernels.aggregate_numba",
    "NumbaAggregation": "pose_stream.kernels.aggregate_numba",
    "CudaAggregator": "pose_stream.kernels.aggregate_cuda",
    "ScaleShape": "pose_stream.kernels.aggregate_cuda",
    "DeviceOutputs": "pose_stream.kernels.aggregate_cuda",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pose_stream.kernels' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
