"""EstimatorConfig: everything that decides what a PoseEstimator computes, validated in one place."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from pose_stream.decoding.grouping_types import GroupingParams
from pose_stream.errors import PoseStreamError
from pose_stream.input_size import InputSize
from pose_stream.joints import JointSet

DEFAULT_MAX_ASPECT = 4.0  # long side / short side of the largest image `prepare` takes


@dataclass(frozen=True)
class EstimatorConfig:
    """How to estimate poses.

    Attributes:
        model: model config name ("w32_512", "crowdpose_w32_512", "small_w32", ...); it names the joint set.
        weights: a PyTorch checkpoint (.pth) for the torch backends; without one the network is random.
        onnx: an ONNX model (`pose-stream export`) for ONNX Runtime.
        engine: a TensorRT engine (`pose-stream build-engine`).
        backend: "auto" (the backend the model file is for; torch without one) or a name from
            `pose_stream.engine.registry.BACKENDS` ("torch", "torch-fp16", "onnxruntime", "tensorrt").
        input_size: S, the network size of the shorter image side, or "HxW" for exactly that network input (an
            `InputSize`, an int S or a string; stored as an InputSize).
        flip: flip test (a second pass on the mirrored input, averaged in).
        scales: test scale factors; several make a multi-scale test and must include 1.0.
        device: "auto", "cpu", "cuda" or "cuda:N" (torch backends; "cpu" also keeps ONNX Runtime on the CPU).
        precision: "fp32", or "fp16" for the torch backend on CUDA (the same as backend "torch-fp16").
        params: grouping settings.
        device_outputs: leave the outputs on the GPU and aggregate them there (TensorRT; torch on CUDA with
            pycuda or CuPy installed): only the candidates (a few KB) cross to the host.
        max_aspect: refuse images whose long side is more than this many times the short side (the short side
            is scaled to input_size, so a 4x4000 strip would become a 128x128000 network input); None: no limit.
        batch: the most images one `infer_batch` call gets (the pipeline's --batch); a backend whose batch range
            cannot take them (a TensorRT engine built for smaller batches) is refused when it is opened.
        cuda_graph: replay the torch network from a CUDA graph per input shape (None: on for the torch backends
            on CUDA, off elsewhere; True on the CPU is an error).
        torch_compile: run the torch network through torch.compile instead of CUDA graphs.
        triton: for backend "triton": the server, the model's name, the timeout, shared memory
            (`engine.registry.TritonOptions`; its defaults without one).
        torch_preprocess: resize and normalise frames with torch on the backend's device, after a uint8 upload
            (equal to the CPU preprocessing bit for bit); None: on for the torch backends on CUDA.
    """

    model: str = "w32_512"
    weights: str | os.PathLike | None = None
    onnx: str | os.PathLike | None = None
    engine: str | os.PathLike | None = None
    backend: str = "auto"
    input_size: InputSize | int | str = 512
    flip: bool = True
    scales: tuple[float, ...] = (1.0,)
    device: str = "auto"
    precision: str = "fp32"
    params: GroupingParams = field(default_factory=GroupingParams)
    device_outputs: bool = True
    max_aspect: float | None = DEFAULT_MAX_ASPECT
    batch: int = 1
    cuda_graph: bool | None = None
    torch_preprocess: bool | None = None
    torch_compile: bool = False
    triton: Any = None

    def __post_init__(self) -> None:
        from pose_stream.devices import check_device_name
        from pose_stream.models.config import get_config

        try:
            get_config(self.model)
        except ValueError as exc:
            raise PoseStreamError(str(exc)) from None
        factors = tuple(float(s) for s in self.scales)
        if not factors or any(not s > 0 for s in factors) or len(set(factors)) != len(factors):
            raise PoseStreamError(f"scales must be distinct positive factors, got {list(self.scales)}")
        if len(factors) > 1 and 1.0 not in factors:
            raise PoseStreamError(f"a multi-scale test needs the scale 1.0 (its tags are used), got {list(factors)}")
        object.__setattr__(self, "scales", tuple(sorted(factors, reverse=True)))
        object.__setattr__(self, "input_size", InputSize.parse(self.input_size, "input_size"))
        if self.max_aspect is not None and not self.max_aspect >= 1:
            raise PoseStreamError(f"max_aspect must be at least 1 (or None for no limit), got {self.max_aspect}")
        check_device_name(self.device)
        if not isinstance(self.batch, int) or self.batch < 1:
            raise PoseStreamError(f"batch must be a whole number >= 1, got {self.batch!r}")
        if self.precision not in ("fp32", "fp16"):
            raise PoseStreamError(f"precision must be fp32 or fp16, got {self.precision!r}")
        spec = self.backend_spec  # validates the backend against the model file
        if self.precision == "fp16" and spec.framework != "torch":
            raise PoseStreamError(f"precision fp16 applies to the torch backend; a {spec.framework} model carries "
                                  "its own")
        if spec.precision == "fp16" and spec.framework == "torch":
            import torch

            if self.device == "cpu" or not torch.cuda.is_available():
                raise PoseStreamError("precision fp16 needs a CUDA GPU (the torch backend runs FP32 on the CPU)")
        if self.torch_compile and (spec.framework != "torch" or self.cuda_graph):
            raise PoseStreamError("torch.compile is an option of the torch backends, and an alternative to CUDA "
                                  "graphs (not both)")
        if self.torch_preprocess and spec.framework != "torch":
            raise PoseStreamError(f"torch preprocessing needs a torch backend, not {spec.name}")
        if self.cuda_graph:
            import torch

            if spec.framework != "torch":
                raise PoseStreamError(f"CUDA graphs are an option of the torch backends, not of {spec.name}")
            if self.device == "cpu" or not torch.cuda.is_available():
                raise PoseStreamError("CUDA graphs need a CUDA GPU (--cuda-graph on the CPU); drop --cuda-graph")

    @property
    def model_file(self) -> str | os.PathLike | None:
        """The one model file given (weights, onnx or engine), or None."""
        files = [f for f in (self.weights, self.onnx, self.engine) if f is not None]
        if len(files) > 1:
            raise PoseStreamError(f"give one model file, not {' and '.join(str(f) for f in files)}")
        return files[0] if files else None

    @property
    def backend_spec(self) -> Any:
        """The engine.registry.BackendSpec that runs this configuration."""
        from pose_stream.engine.registry import BACKENDS, resolve_backend

        framework = "torch" if self.weights is not None else "onnxruntime" if self.onnx is not None else \
            "tensorrt" if self.engine is not None else None
        spec = resolve_backend(self.backend, self.model_file, framework, self.precision)
        if spec.name == "torch" and self.precision == "fp16":
            spec = BACKENDS["torch-fp16"]  # backend="torch", precision="fp16" is the same as "torch-fp16"
        return spec

    @property
    def joint_set(self) -> JointSet:
        from pose_stream.models.config import get_config

        return get_config(self.model).joint_set

    def with_options(self, **changes: Any) -> "EstimatorConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
