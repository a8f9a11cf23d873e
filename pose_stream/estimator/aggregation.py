"""Which aggregation a PoseEstimator's outputs get, and its lifetime.

- TensorRT with device outputs: the CUDA aggregation (`decoding.aggregate_gpu.GpuAggregation`) in the engine's
  CUDA context reads the outputs where they are; if its kernels cannot compile here, the outputs are copied to
  the host instead (with a warning).
- Host outputs of a GPU backend, where pycuda is installed: the CUDA aggregation after a host-to-device copy.
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
            self.gpu = GpuAggregation(self.decoder.joint_set, self.decoder.params, context=backend.cuda_context)
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
        if not (available("pycuda.driver") and available("pose_stream.decoding.aggregate_cuda")):
            self._gpu_unavailable = True
            return None
        from pose_stream.decoding.aggregate_gpu import GpuAggregation

        try:
            self.gpu = GpuAggregation(self.decoder.joint_set, self.decoder.params)
        except PoseStreamError as exc:
            log.warning("%s; aggregating on the CPU (Numba)", exc)
            self._gpu_unavailable = True
            return None
        log.info("aggregation: CUDA")
        return self.gpu
