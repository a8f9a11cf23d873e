"""Decoding: image -> network input (preprocess) and network outputs -> people (aggregate, group, refine).
May import: numpy, numba, OpenCV, optional pycuda/CuPy, and pose_stream.{errors, joints, poses, _optional}; not
torch, engine/, pipeline/, train/ or synthetic/.

Each step has a plain NumPy reference (`*_ref.py`) that its fast paths are tested against, beside them:
`preprocess.py`; `aggregate_ref.py` / `aggregate_numba.py` / `aggregate_cuda.py` + `aggregate.cu` (with
`aggregate_gpu.py`, the owner of the CUDA aggregation); `group_ref.py` / `group_numba.py` (+ `hungarian.py`);
refine in `aggregate_ref.refine_peaks` / `refine_numba.py`; shared data in `types.py`; `decoder.py` ties them
into one `Decoder`. Public names load their module on first use (Numba compiles, pycuda is optional).
"""
from __future__ import annotations

from pose_stream._lazy import lazy_exports

_LAZY = {
    "Decoder": "pose_stream.decoding.decoder",
    "decode": "pose_stream.decoding.decoder",
    "to_poses": "pose_stream.decoding.decoder",
    "ScaleOutputs": "pose_stream.decoding.types",
    "Aggregated": "pose_stream.decoding.decoder",
    "NMS_KERNEL": "pose_stream.decoding.decoder",
    "preprocess": "pose_stream.decoding.preprocess",
    "Preprocessor": "pose_stream.decoding.preprocess",
    "Transform": "pose_stream.decoding.preprocess",
    "check_image": "pose_stream.decoding.preprocess",
    "Candidates": "pose_stream.decoding.types",
    "AggregatedMaps": "pose_stream.decoding.types",
    "RefinePeaks": "pose_stream.decoding.types",
    "GroupingParams": "pose_stream.decoding.grouping_types",
    "aggregate_reference": "pose_stream.decoding.aggregate_ref",
    "refine_peaks": "pose_stream.decoding.aggregate_ref",
    "aggregate_numba": "pose_stream.decoding.aggregate_numba",
    "NumbaAggregation": "pose_stream.decoding.aggregate_numba",
    "CudaAggregator": "pose_stream.decoding.aggregate_cuda",
    "GpuAggregation": "pose_stream.decoding.aggregate_gpu",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, lambda: list(globals()))
