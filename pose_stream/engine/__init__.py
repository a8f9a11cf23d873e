"""Inference backends behind one interface (`Backend`): PyTorch, ONNX Runtime, and TensorRT."""
from __future__ import annotations

from pose_stream.engine.base import Backend, BackendInfo

__all__ = ["Backend", "BackendInfo", "OnnxRuntimeBackend", "TorchBackend"]


def __getattr__(name: str):
    # Backends import their framework on first use only.
    if name == "TorchBackend":
        from pose_stream.engine.torch_backend import TorchBackend

        return TorchBackend
    if name == "OnnxRuntimeBackend":
        from pose_stream.engine.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend
    raise AttributeError(name)
