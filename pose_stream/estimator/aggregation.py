"""Which aggregation a PoseEstimator's outputs get, and its lifetime.

- Device outputs (TensorRT, or torch on CUDA): the CUDA aggregation (`decoding.aggregate_gpu.GpuAggregation`)
  reads the outputs where they are, in the engine's CUDA context (TensorRT) or the device's primary context
  (torch), through pycuda or, where pycuda is not installed, CuPy; if its kernels cannot compile here, the
  outputs are copied to the host instead (with a warning).
- Host outputs of a GPU backend, where pycuda or CuPy is installed: the CUDA aggregation after a copy.
- Otherwise: the Numba aggregation of the `Decoder`.
"""
from __future__ import annotations

import logging
from typing import Any

from pose_stream._optional import available
from pose_stream.decoding.decoder import Aggregated, Decoder
from pose_stream.errors import PoseStreamError
from pose_stream.estimator.passes import RawOutputs

log = logging.getLogger(__name__)


class Aggregation:
    """Aggregates RawOutputs into candidates with the best path this backend allows; owns the GPU one."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.gpu: Any = None          # GpuAggregation, when chosen
        self._gpu_unavailable = False

    def on_device(self, backend: Any) -> bool:
        """Set up the CUDA aggregation in `backend`'s CUDA context; False (warned) when it cannot run here."""
        from pose_stream.decoding.aggregate_gpu import GpuAggregation

        try:
            self.gpu = GpuAggregation(self.decoder.joint_set, self.decoder.params,
                                      context=getattr(backend, "cuda_context", None), driver=gpu_driver(backend))
        except PoseStreamError as exc:
            log.warning("%s; the outputs are copied to the host and aggregated on the CPU instead", exc)
            self._gpu_unavailable = True  # the host path would compile the same kernels
            return False
        log.info("aggregation: CUDA, reading the engine's outputs on the GPU")
        return True

    def keep(self, tensors: tuple, slot: int, stream: Any) -> tuple:
        """Copies of device outputs that survive the backend's next call (see BackendPasses.on_device)."""
        return self.gpu.keep(tensors, slot, stream)

    def __call__(self, raw: RawOutputs, backend: Any) -> Aggregated:
        if raw.on_device:
            return self.gpu.aggregate(raw.scales, raw.transform, raw.stream)
        gpu = self._host_gpu(backend)
        if gpu is not None:
            return gpu.aggregate(raw.scales, raw.transform)
        return self.decoder.aggregate(raw.scales, raw.transform)

    def close(self) -> None:
        if self.gpu is not None:
            self.gpu.close()
            self.gpu = None

    def _host_gpu(self, backend: Any) -> Any:
        """The CUDA aggregation for host outputs of a GPU backend when pycuda is there, else None (Numba)."""
        if self.gpu is not None or self._gpu_unavailable or backend is None or backend.info.device == "cpu":
            return self.gpu
        if gpu_driver(backend) is None:
            self._gpu_unavailable = True
            return None
        from pose_stream.decoding.aggregate_gpu import GpuAggregation

        try:
            self.gpu = GpuAggregation(self.decoder.joint_set, self.decoder.params, driver=gpu_driver(backend))
        except PoseStreamError as exc:
            log.warning("%s; aggregating on the CPU (Numba)", exc)
            self._gpu_unavailable = True
            return None
        log.info("aggregation: CUDA")
        return self.gpu


def gpu_driver(backend: Any) -> str | None:
    """How the CUDA aggregation reaches `backend`'s outputs: "pycuda" (needed in a TensorRT engine's own
    context), "cupy" (the primary context, which PyTorch uses), or None when neither is installed."""
    if available("pycuda.driver"):
        return "pycuda"
    if getattr(backend, "cuda_context", None) is None and available("cupy"):
        return "cupy"
    return None


def keeps_outputs_on_device(framework: str, device: str) -> bool:
    """Whether a backend's outputs can stay on the GPU for the CUDA aggregation: TensorRT always tries (and
    falls back with a warning); torch on CUDA where pycuda or CuPy is installed."""
    if framework == "tensorrt":
        return True
    if framework != "torch" or not (available("pycuda.driver") or available("cupy")):
        return False
    from pose_stream.devices import torch_device

    return torch_device(device).type == "cuda"
