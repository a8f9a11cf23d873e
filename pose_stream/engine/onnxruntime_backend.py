"""ONNX Runtime backend: CPU here; CUDA and TensorRT execution providers when the GPU build has them."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pose_stream.engine.base import Backend, BackendInfo
from pose_stream.engine.ort_providers import gpu_providers, uses_fp16
from pose_stream.errors import PoseStreamError

log = logging.getLogger(__name__)


class OnnxRuntimeBackend(Backend):
    """Runs an exported HigherHRNet ONNX model.

    Args:
        onnx_path: the model written by `export_onnx`.
        providers: "auto" (the best available: TensorRT EP with its engine cache, CUDA, CPU), or explicit
            provider names / (name, options) pairs, e.g. from `ort_providers.tensorrt_provider(fp16=True)`.
        threads: intra-op threads for the CPU provider (0 = ONNX Runtime's default).
    """

    def __init__(self, onnx_path: str | os.PathLike, providers: str | list = "auto", threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(onnx_path)
        if not path.is_file():
            raise PoseStreamError(f"ONNX model not found: {path}")
        if providers == "auto":
            providers = gpu_providers(set(ort.get_available_providers()))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for corrupt or invalid models
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise PoseStreamError(f"cannot load ONNX model {path}: {first}") from None
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 2:
            raise PoseStreamError(f"{path} is not a HigherHRNet export (expected 1 input and 2 outputs)")
        self._input_name = inputs[0].name
        self._output_names = [o.name for o in outputs]
        self._input_shape = tuple(d if isinstance(d, int) else None for d in inputs[0].shape)
        k = outputs[1].shape[1]
        if not isinstance(k, int):
            raise PoseStreamError(f"{path}: the joint count (channels of the second output) must be static")
        self.num_joints = k
        used = self.session.get_providers()
        device = "cuda" if any(p != "CPUExecutionProvider" for p in used) else "cpu"
        fp16 = inputs[0].type == "tensor(float16)" or uses_fp16(self.session.get_provider_options())
        precision = "fp16" if fp16 else "fp32"
        self.info = BackendInfo("onnxruntime", device, precision, "+".join(p.replace("ExecutionProvider", "") for p in used))
        self._closed = False

    @property
    def input_shape(self) -> tuple[int | None, int, int | None, int | None]:
        return self._input_shape  # type: ignore[return-value]

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        if self._closed:
            raise PoseStreamError("the ONNX Runtime backend is closed")
        batch = self.check_input(batch)
        return [np.asarray(o, dtype=np.float32) for o in self.session.run(self._output_names, {self._input_name: batch})]

    def close(self) -> None:
        if not self._closed:
            del self.session
            self._closed = True
