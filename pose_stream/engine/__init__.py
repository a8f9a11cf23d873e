"""Inference backends behind one interface (`Backend`): PyTorch, ONNX Runtime, and TensorRT (builder, engine cache).
May import: torch, onnxruntime, tensorrt, pycuda and pose_stream.{models, export, devices, atomic, errors}; not
decoding/, pipeline/ or train/.
"""
from __future__ import annotations

from pose_stream.engine.base import Backend, BackendInfo, DeviceOutputs, DeviceTensor

__all__ = [
    "Backend", "BackendInfo", "BuildResult", "CudaContext", "DeviceOutputs", "DeviceTensor", "OnnxRuntimeBackend",
    "ShapeProfile", "TensorRTBackend", "TorchBackend", "build_engine",
]

# TensorRT side: none of these import tensorrt or pycuda until they are used.
_TENSORRT_NAMES = {
    "TensorRTBackend": "pose_stream.engine.tensorrt_backend",
    "build_engine": "pose_stream.engine.builder",
    "BuildResult": "pose_stream.engine.builder",
    "ShapeProfile": "pose_stream.engine.profiles",
    "CudaContext": "pose_stream.engine.cuda_context",
}


def __getattr__(name: str):
    # Backends import their framework on first use only.
    if name == "TorchBackend":
        from pose_stream.engine.torch_backend import TorchBackend

        return TorchBackend
    if name == "OnnxRuntimeBackend":
        from pose_stream.engine.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend
    if name in _TENSORRT_NAMES:
        import importlib

        return getattr(importlib.import_module(_TENSORRT_NAMES[name]), name)
    raise AttributeError(name)
