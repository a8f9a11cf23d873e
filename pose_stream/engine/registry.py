"""The backends pose-stream has, in one list, and the one place that opens them.

A backend name ("torch", "torch-fp16", "onnxruntime", "tensorrt") or a model file, by its suffix (.pth/.pt,
.onnx, .plan/.engine), picks a `BackendSpec`; `open_backend` builds the Backend for it. Every subcommand's
`--backend` choices and help come from `BACKENDS`; `PoseEstimator` and the benchmarks open backends here.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pose_stream._optional import available
from pose_stream.errors import PoseStreamError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendSpec:
    """One way to run the network.

    Attributes:
        name: as typed after --backend.
        framework: "torch", "onnxruntime" or "tensorrt" (what BackendInfo.name reports).
        precision: "fp32" or "fp16"; ONNX and TensorRT models carry theirs (TensorRT engines are built FP16).
        file_kind: what its model file is, for messages.
        suffixes: the model file suffixes that mean this framework.
        option: the command-line option that names its model file.
        needs: what it needs installed or present.
        use: when to choose it.
    """

    name: str
    framework: str
    precision: str
    file_kind: str
    suffixes: tuple[str, ...]
    option: str
    needs: str
    use: str


@dataclass(frozen=True)
class TritonOptions:
    """Where the triton backend finds its model: the server's gRPC HOST:PORT, the model's name, the timeout of
    every call in seconds, and whether tensors travel through shared memory (server on this host)."""

    url: str = "localhost:8001"
    model: str = "pose"
    timeout: float = 2.0
    shared_memory: bool = False

    def __post_init__(self) -> None:
        host, sep, port = self.url.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise PoseStreamError(f"bad --triton-url {self.url!r}: expected HOST:PORT, such as localhost:8001")
        if not self.model or "/" in self.model:
            raise PoseStreamError(f"bad --triton-model {self.model!r}: expected the model's name on the server")
        if not 0 < self.timeout < float("inf"):
            raise PoseStreamError(f"bad --triton-timeout {self.timeout}: expected seconds > 0")


BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("torch", "torch", "fp32", "PyTorch checkpoint", (".pth", ".pt"), "--weights",
                "PyTorch (CPU or CUDA)", "reference results, training, any machine"),
    BackendSpec("torch-fp16", "torch", "fp16", "PyTorch checkpoint", (".pth", ".pt"), "--weights",
                "PyTorch with a CUDA GPU", "a GPU without TensorRT"),
    BackendSpec("onnxruntime", "onnxruntime", "fp32", "ONNX model", (".onnx",), "--onnx",
                "onnxruntime (onnxruntime-gpu for CUDA)", "the fastest CPU path; servers without PyTorch"),
    BackendSpec("tensorrt", "tensorrt", "fp16", "TensorRT engine", (".plan", ".engine", ".trt"), "--engine",
                "TensorRT 10, pycuda and an NVIDIA GPU", "the fastest GPU path"),
    BackendSpec("triton", "triton", "fp32", "model on a Triton server", (), "--triton-model",
                "a Triton Inference Server and tritonclient (the triton extra)",
                "many camera hosts sharing GPU servers (pose-stream triton-repo writes the model repository)"),
)}
BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKEND_NAMES)
BACKEND_HELP = "; ".join(f"{s.name}: {s.file_kind} ({s.option})" for s in BACKENDS.values())


def get_backend(name: str) -> BackendSpec:
    """The spec called `name`; PoseStreamError listing the names otherwise."""
    spec = BACKENDS.get(str(name).strip().lower())
    if spec is None:
        raise PoseStreamError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    return spec


def framework_of_file(path: str | os.PathLike) -> str | None:
    """The framework a model file is for, by its suffix; None for a suffix no backend claims."""
    suffix = Path(path).suffix.lower()
    return next((s.framework for s in BACKENDS.values() if suffix in s.suffixes), None)


def resolve_backend(name: str, model_file: str | os.PathLike | None = None, framework: str | None = None,
                    precision: str | None = None) -> BackendSpec:
    """The backend that runs: `name`, or for "auto" the one the model file is for (torch without one).

    framework: what the model file was given as (--weights: torch, --onnx: onnxruntime, --engine: tensorrt);
        without it, the file's suffix decides. precision: "fp16" picks torch-fp16 for a torch checkpoint.
    A model file for another framework than the named backend's is an error naming both (an ONNX file under
    --backend torch would otherwise be ignored and a random network run instead).
    """
    if model_file is not None and framework is None:
        framework = framework_of_file(model_file)
        if framework is None:
            known = ", ".join(sorted({x for s in BACKENDS.values() for x in s.suffixes}))
            raise PoseStreamError(f"cannot tell which backend runs {model_file}: its suffix is none of {known}")
    if name == "auto":
        framework = framework or "torch"
        # Each framework's default backend has the framework's name.
        return BACKENDS["torch-fp16" if framework == "torch" and precision == "fp16" else framework]
    spec = get_backend(name)
    if model_file is not None and framework != spec.framework:
        kind = next(s.file_kind for s in BACKENDS.values() if s.framework == framework)
        raise PoseStreamError(f"{model_file} is a {kind}, which the {framework} backend runs, but backend "
                              f"'{spec.name}' was asked for: drop the backend choice or give a model file for "
                              f"'{spec.name}' ({spec.option})")
    if model_file is None and spec.framework not in ("torch", "triton"):
        raise PoseStreamError(f"backend '{spec.name}' needs {spec.option.lstrip('-')}=PATH (a {spec.file_kind}, "
                              f"{spec.option})")
    return spec


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
    if spec.framework == "triton":
        return None if available("tritonclient.grpc") else "tritonclient is not installed (the triton extra)"
    if not available("tensorrt"):
        return "the tensorrt package does not import (pip install 'pose-stream[gpu]' on a GPU machine)"
    if not cuda_available():
        return "TensorRT needs a CUDA GPU"
    return None


def open_backend(spec: BackendSpec, model_file: str | os.PathLike | None = None, *, model: Any = None,
                 device: str = "auto", cuda_graph: bool | None = None, torch_compile: bool = False,
                 triton: Any = None):
    """The Backend for `spec`.

    torch: `model` is a config name (its weights loaded from `model_file`, or random with a warning) or an
    nn.Module used as it is; onnxruntime and tensorrt read `model_file`. ONNX Runtime uses only its CPU
    provider when device is "cpu". cuda_graph: torch only; None = on where the network runs on CUDA.
    """
    if spec.framework == "torch":
        from pose_stream.devices import torch_device
        from pose_stream.engine import TorchBackend

        if cuda_graph is None:
            cuda_graph = torch_device(device).type == "cuda" and not torch_compile
        options = {"compile": True} if torch_compile else {}
        return TorchBackend(_torch_model(model, model_file), device=device, fp16=spec.precision == "fp16",
                            cuda_graph=cuda_graph, **options)
    if spec.framework == "triton":
        from pose_stream.engine.triton_backend import TritonBackend

        if triton is None:
            raise PoseStreamError("the triton backend needs a server and a model (--triton-url, --triton-model)")
        from pose_stream.models.config import get_config

        joints = get_config(model).joint_set.num_joints if isinstance(model, str) else 17
        return TritonBackend(triton.url, triton.model, timeout=triton.timeout, shared_memory=triton.shared_memory,
                             num_joints=joints)
    if model_file is None:
        raise PoseStreamError(f"the {spec.name} backend needs a {spec.file_kind} ({spec.option} PATH)")
    if spec.framework == "onnxruntime":
        from pose_stream.engine import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_file, providers=["CPUExecutionProvider"] if device == "cpu" else "auto")
    try:
        from pose_stream.engine import TensorRTBackend
    except ImportError:
        raise PoseStreamError("this install has no TensorRTBackend (pose_stream.engine)") from None
    return TensorRTBackend(model_file)


def _torch_model(model: Any, weights: str | os.PathLike | None):
    """`model` itself when it is a network; else the network of that config (name or ModelConfig) with
    `weights` loaded, or random weights with a warning."""
    from torch import nn

    from pose_stream.models import build_model, load_checkpoint

    if isinstance(model, nn.Module):
        return model
    network = build_model(model or "w32_512")
    if weights is not None:
        load_checkpoint(network, weights)
    else:
        log.warning("no weights given: model '%s' is randomly initialised and will find no one", network.config.name)
    return network
