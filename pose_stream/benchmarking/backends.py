"""Backend choices shared by `pose-stream bench` and `pose-stream eval`: names, availability, construction.

A spec names a framework and a precision ("torch-fp16"). Engine-only runs open a `Backend` directly; end-to-end
runs build a `PoseEstimator` with the same framework, so both time the same engine.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from pose_stream._optional import available
from pose_stream.errors import PoseStreamError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendSpec:
    """One benchmarkable engine: `name` as typed on the command line."""

    name: str
    framework: str   # "torch", "onnxruntime", "tensorrt"
    precision: str   # "fp32", "fp16"


BACKEND_SPECS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("torch", "torch", "fp32"),
        BackendSpec("torch-fp16", "torch", "fp16"),
        BackendSpec("onnxruntime", "onnxruntime", "fp32"),
        BackendSpec("tensorrt", "tensorrt", "fp16"),
    )
}


def parse_backends(text: str) -> tuple[BackendSpec, ...]:
    """'torch,onnxruntime' -> specs; 'all' -> every spec present here. Unknown or absent ones are refused."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise PoseStreamError("--backend needs at least one name")
    if names == ["all"]:
        present = tuple(spec for spec in BACKEND_SPECS.values() if unavailable_reason(spec) is None)
        if not present:
            raise PoseStreamError("no backend is available here")
        return present
    specs = []
    for name in names:
        spec = BACKEND_SPECS.get(name)
        if spec is None:
            raise PoseStreamError(f"unknown backend {name!r}; choose from {', '.join(BACKEND_SPECS)} or all")
        reason = unavailable_reason(spec)
        if reason:
            raise PoseStreamError(f"backend {name} is not available here: {reason}")
        specs.append(spec)
    return tuple(dict.fromkeys(specs))


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def unavailable_reason(spec: BackendSpec) -> str | None:
    """Why `spec` cannot run on this machine, or None when it can."""
    if spec.framework == "torch":
        if spec.precision == "fp16" and not cuda_available():
            return "FP16 needs a CUDA GPU, and PyTorch sees none"
        return None
    if spec.framework == "onnxruntime":
        return None if available("onnxruntime") else "onnxruntime is not installed"
    if not available("tensorrt"):
        return "the tensorrt package does not import (pip install 'pose-stream[gpu]' on a GPU machine)"
    if not cuda_available():
        return "TensorRT needs a CUDA GPU"
    return None


def open_backend(spec: BackendSpec, *, model=None, onnx: str | os.PathLike | None = None,
                 engine: str | os.PathLike | None = None, device: str = "auto"):
    """A `Backend` for engine-only timing: torch from `model`, ONNX Runtime from `onnx`, TensorRT from `engine`.

    Built as PoseEstimator builds its own (ONNX Runtime with its default threads), so that engine-only and
    end-to-end figures time the same engine."""
    if spec.framework == "torch":
        from pose_stream.engine import TorchBackend

        return TorchBackend(model, device=device, fp16=spec.precision == "fp16")
    if spec.framework == "onnxruntime":
        from pose_stream.engine import OnnxRuntimeBackend

        if onnx is None:
            raise PoseStreamError("the onnxruntime backend needs an ONNX model")
        return OnnxRuntimeBackend(onnx, providers=_ort_providers(device))
    if engine is None:
        raise PoseStreamError("the tensorrt backend needs --engine PATH (build one with `pose-stream build-engine`)")
    try:
        from pose_stream.engine import TensorRTBackend
    except ImportError:
        raise PoseStreamError("this install has no TensorRTBackend (pose_stream.engine)") from None
    return TensorRTBackend(engine)


def _ort_providers(device: str) -> str | list[str]:
    return ["CPUExecutionProvider"] if device == "cpu" else "auto"


def build_estimator(spec: BackendSpec | None, **options: Any):
    """A `PoseEstimator` running `spec` (None: backend "auto"); options go to PoseEstimator as they are
    (model, weights, onnx, engine, input_size, flip, scales, device)."""
    from pose_stream.estimator import PoseEstimator

    if spec is None:
        return PoseEstimator(backend="auto", **options)
    precision = spec.precision if spec.framework == "torch" else "fp32"  # the others' models carry theirs
    return PoseEstimator(backend=spec.framework, precision=precision, **options)
