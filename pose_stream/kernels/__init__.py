"""Decoding kernels: heatmap aggregation and candidates (NumPy reference, Numba, CUDA) and grouping.

Entry points load their modules on first use (Numba compiles, pycuda is optional).
"""
from __future__ import annotations

from pose_stream._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, lambda: list(globals()))
