"""Aggregation on the GPU for `PoseEstimator`: network outputs -> candidates -> grouped people.

One kernel path (`kernels.aggregate_cuda.CudaAggregator`), two kinds of input:
- host arrays (what the torch and ONNX Runtime CUDA backends return): copied into device buffers owned here;
- device tensors left on the GPU by `TensorRTBackend.infer_device`: read where they are, so the heatmaps never
  cross PCIe. A backend reuses its output buffers on every call, so the outputs of a frame's earlier calls
  (other test scales, or the flipped pass of a batch-1 engine) are first copied device-to-device into buffers
  owned here (`keep`), queued on the backend's stream behind the network.

CUDA context: given the TensorRT backend's `CudaContext`, everything runs in it, in the backend's thread (the
context enforces that). Without one, with pycuda, this class retains the device's primary context itself and
pushes it around each call, from whichever thread calls. With CuPy (where pycuda is not installed, as beside
PyTorch on CUDA) everything runs in the device's primary context, which PyTorch and CuPy share and keep current.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pose_stream._optional import require
from pose_stream.decoding.decoder import NMS_KERNEL, Aggregated, refine_search_from
from pose_stream.decoding.types import ScaleOutputs
from pose_stream.errors import PoseStreamError
from pose_stream.joints import JointSet
from pose_stream.decoding.group_numba import NumbaGrouper
from pose_stream.decoding.grouping_types import GroupingParams
from pose_stream.decoding.preprocess import Transform

log = logging.getLogger(__name__)


class GpuAggregation:
    """CudaAggregators (one per set of output shapes) and the device buffers they read, in one context.

    Args:
        joint_set: K joints and the flip index.
        params: grouping settings (max_people, thresholds).
        context: the `CudaContext` of the backend whose device outputs this reads (shared, not owned), or None
            to retain the primary context of `device` (owned; for host outputs).
        device: CUDA device index when no context is given.

    Raises PoseStreamError when the kernels cannot be compiled here (pycuda compiles with nvcc at run time).
    """

    def __init__(self, joint_set: JointSet, params: GroupingParams, context: Any = None, device: int = 0,
                 driver: str = "pycuda") -> None:
        from pose_stream.decoding.aggregate_cuda import compile_kernels

        if driver not in ("pycuda", "cupy"):
            raise PoseStreamError(f"unknown CUDA driver {driver!r}; choose pycuda or cupy")
        self.driver = driver
        self._cuda = require("pycuda.driver", "the CUDA aggregation") if driver == "pycuda" else _CupyMemory()
        self._shared = context
        self._primary = None
        if context is None and driver == "pycuda":
            self._cuda.init()
            self._primary = self._cuda.Device(device).retain_primary_context()
        self._joint_set = joint_set
        self._params = params
        self._grouper = NumbaGrouper(joint_set.visit_order, params)
        self._aggregators: dict[tuple, Any] = {}
        self._buffers: dict[tuple, tuple[Any, int]] = {}  # key -> (allocation, bytes)
        self._closed = False
        try:
            with self._active():
                compile_kernels(driver)
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        if self.driver == "cupy":  # the primary context, current already
            yield
            return
        if self._shared is not None:
            with self._shared.active():
                yield
            return
        self._primary.push()
        try:
            yield
        finally:
            self._cuda.Context.pop()

    def keep(self, tensors: Sequence[Any], slot: int, stream: Any) -> tuple[Any, ...]:
        """Copies of device `tensors` (DeviceTensor) in buffers of `slot` (reused every frame), queued on `stream`
        so they are taken before the backend's next call overwrites its outputs."""
        self._check_open()
        kept = []
        with self._active():
            for index, tensor in enumerate(tensors):
                buffer = self._buffer(("kept", slot, index), tensor.nbytes)
                self._cuda.memcpy_dtod_async(buffer, tensor.pointer, tensor.nbytes, stream)
                kept.append(dataclasses.replace(tensor, pointer=buffer))
        return tuple(kept)

    def aggregate(self, scales: Sequence[ScaleOutputs], transform: Transform, stream: Any = None) -> Aggregated:
        """Candidates and people of one frame. Entries of `scales` are host arrays or DeviceTensors of batch 1;
        device work is queued on `stream` (the backend's, for device tensors). Groups at once: the GPU refine
        reads this frame's maps, which the next frame overwrites."""
        from pose_stream.decoding.aggregate_cuda import ScalePointers

        self._check_open()
        with self._active():
            aggregator = self._aggregator(scales, transform)
            pointers = []
            for position, scale in enumerate(scales):
                entries = list(scale.outputs) + (list(scale.flipped) if scale.flipped is not None else [])
                pointers.append(ScalePointers(*[self._pointer(position, i, e) for i, e in enumerate(entries)]))
            candidates = aggregator.aggregate(pointers, stream)
            grouped = self._grouper.group(
                candidates, neighbours=candidates.neighbours,
                refine_search=refine_search_from(lambda mean_tags: aggregator.refine(mean_tags, stream)),
                size=transform.network_size,
            )
        return Aggregated(candidates, candidates.neighbours, transform, grouped=grouped)

    def close(self) -> None:
        """Free every buffer and aggregator, then release the primary context if it is ours. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            with self._active():
                for aggregator in self._aggregators.values():
                    aggregator.close()
                for allocation, _ in self._buffers.values():
                    allocation.free()
        finally:
            self._aggregators.clear()
            self._buffers.clear()
            if self._primary is not None:
                self._primary.detach()

    # ------------------------------------------------------------------------------------------- private
    def _check_open(self) -> None:
        if self._closed:
            raise PoseStreamError("the GPU aggregation is closed")

    def _buffer(self, key: tuple, nbytes: int) -> int:
        held = self._buffers.get(key)
        if held is None or held[1] < nbytes:
            if held is not None:
                held[0].free()
            self._buffers[key] = (self._cuda.mem_alloc(nbytes), nbytes)
        return int(self._buffers[key][0])

    def _pointer(self, position: int, index: int, entry: Any) -> int:
        if isinstance(entry, np.ndarray):
            host = np.ascontiguousarray(entry, np.float32)
            buffer = self._buffer(("host", position, index), host.nbytes)
            self._cuda.memcpy_htod(buffer, host)
            return buffer
        if np.dtype(entry.dtype) != np.float32 or entry.shape[0] != 1:
            raise PoseStreamError(
                f"the CUDA aggregation reads float32 outputs of batch 1, got {entry.name} {np.dtype(entry.dtype)} "
                f"{'x'.join(map(str, entry.shape))} (rebuild the engine with float32 outputs)"
            )
        return int(entry.pointer)

    def _aggregator(self, scales: Sequence[ScaleOutputs], transform: Transform) -> Any:
        from pose_stream.decoding.aggregate_cuda import CudaAggregator, ScaleShape

        flip = scales[0].flipped is not None
        k = self._joint_set.num_joints
        shapes = []
        for scale in scales:
            out0, out1 = (tuple(int(d) for d in entry.shape) for entry in scale.outputs)
            if out0[-3] != 2 * k or out1[-3] != k:
                raise PoseStreamError(f"outputs of {out0[-3]} and {out1[-3]} channels do not fit {k} joints "
                                      f"(expected {2 * k} and {k})")
            shapes.append(ScaleShape(out0[-2:], out1[-2:], scale.factor))
        w, h = transform.network_size
        key = (tuple(shapes), (h, w), flip)
        if key not in self._aggregators:
            self._aggregators[key] = CudaAggregator(
                k, (h, w), shapes, self._joint_set.flip_index if flip else None, self._params.max_people, NMS_KERNEL,
                driver=self.driver,
            )
        return self._aggregators[key]


class _CupyAllocation:
    """A device buffer from CuPy's runtime, shaped like pycuda's DeviceAllocation (int(), free())."""

    def __init__(self, runtime: Any, nbytes: int) -> None:
        self._runtime = runtime
        self._ptr = int(runtime.malloc(max(nbytes, 1)))

    def __int__(self) -> int:
        return self._ptr

    def free(self) -> None:
        if self._ptr:
            self._runtime.free(self._ptr)
            self._ptr = 0


class _CupyMemory:
    """The few pycuda.driver calls GpuAggregation makes, through CuPy's runtime (primary context)."""

    def __init__(self) -> None:
        self._runtime = require("cupy", "the CUDA aggregation through CuPy").cuda.runtime

    def mem_alloc(self, nbytes: int) -> _CupyAllocation:
        return _CupyAllocation(self._runtime, nbytes)

    def memcpy_htod(self, ptr: int, host: np.ndarray) -> None:
        self._runtime.memcpy(int(ptr), host.ctypes.data, host.nbytes, self._runtime.memcpyHostToDevice)

    def memcpy_dtod_async(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        handle = int(getattr(stream, "handle", stream) or 0)
        self._runtime.memcpyAsync(int(dst), int(src), nbytes, self._runtime.memcpyDeviceToDevice, handle)
