"""TensorRT backend: a serialized engine (plan) run through TensorRT 10's named-tensor API with pycuda.

One execution context, one CUDA stream, and host (pinned) and device buffers sized once for the
largest shape of every optimization profile. `infer` returns host arrays like every backend;
`infer_device` leaves the outputs on the GPU and hands out their device pointers and the stream, so
the CUDA aggregation reads the heatmaps where they are. All CUDA work happens in the thread that
created the backend, inside the device's primary context (see `CudaContext`).
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from pose_stream.engine.base import Backend, BackendInfo, DeviceOutputs, DeviceTensor
from pose_stream.engine.cuda_context import CudaContext, wait_for_event, wait_for_stream
from pose_stream.engine.engine_cache import check_engine_compatibility, read_sidecar
from pose_stream.engine.profiles import ShapeProfile
from pose_stream.engine.trt_runtime import import_tensorrt, trt_logger
from pose_stream.errors import PoseStreamError
from pose_stream.export import OUTPUT_NAMES

log = logging.getLogger(__name__)


class TensorRTBackend(Backend):
    """Runs a TensorRT engine written by `build_engine`.

    Args:
        engine_path: the plan; its sidecar (`<plan>.json`) is checked against this machine first.
        device: CUDA device index.
        timeout_s: longest wait for one inference before it is reported as hung.
    """

    def __init__(self, engine_path: str | os.PathLike, device: int = 0, *, timeout_s: float = 10.0) -> None:
        self._closed = True  # until fully constructed
        path = Path(engine_path)
        if not path.is_file():
            raise PoseStreamError(f"TensorRT engine not found: {path}")
        metadata = read_sidecar(path)
        trt = import_tensorrt("the TensorRT backend")
        self._trt = trt
        self._timeout_s = timeout_s
        self._device: dict[str, Any] = {}
        self._host: dict[str, np.ndarray] = {}
        self._cuda = CudaContext(device)
        try:
            check_engine_compatibility(metadata, path, trt.__version__, self._cuda.name, self._cuda.compute_capability)
            with self._cuda.active():
                self._load(path)
        except BaseException:
            self._release()
            raise
        precision = metadata.spec.precision if metadata is not None else "unknown"
        ranges = ", ".join(p.describe() for p in self.profiles)
        self.info = BackendInfo("tensorrt", self._cuda.description, precision,
                                f"TensorRT {trt.__version__}, inputs {ranges}")
        self._closed = False
        log.info("loaded %s: %s", path, self.info)

    # -- loading ---------------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        trt, cuda = self._trt, self._cuda.driver
        logger = trt_logger(trt)
        logger.clear()
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise PoseStreamError(
                f"TensorRT {trt.__version__} could not load {path}: "
                f"{logger.last_error or 'not a plan for this TensorRT version and GPU'}"
            )
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 2:
            raise PoseStreamError(f"{path} is not a HigherHRNet engine (expected 1 input and 2 outputs, "
                                  f"found {len(inputs)} and {len(outputs)})")
        if set(outputs) != set(OUTPUT_NAMES):
            # Not our export's names: out0 is the one with 2K channels.
            outputs.sort(key=lambda n: -int(engine.get_tensor_shape(n)[1]))
        else:
            outputs = list(OUTPUT_NAMES)
        self._input, self._outputs = inputs[0], outputs
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self.num_joints = int(engine.get_tensor_shape(outputs[1])[1])
        self.profiles = self._read_profiles()
        self._context = engine.create_execution_context()
        if self._context is None:
            raise PoseStreamError(f"TensorRT could not create an execution context for {path}: {logger.last_error}")
        self._stream = cuda.Stream()
        self._done = cuda.Event(cuda.event_flags.DISABLE_TIMING)
        self._input_free = cuda.Event(cuda.event_flags.DISABLE_TIMING)
        self._input_free.record(self._stream)
        self._profile_index = 0
        self._allocate()

    def _read_profiles(self) -> tuple[ShapeProfile, ...]:
        engine = self._engine
        static = tuple(int(d) for d in engine.get_tensor_shape(self._input))
        try:
            if all(d > 0 for d in static):
                return (ShapeProfile.fixed(static),)
            profiles = []
            for index in range(engine.num_optimization_profiles):
                lo, opt, hi = engine.get_tensor_profile_shape(self._input, index)
                profiles.append(ShapeProfile(tuple(lo), tuple(opt), tuple(hi)))
            return tuple(profiles)
        except ValueError as exc:
            raise PoseStreamError(f"the engine's input shapes are not HigherHRNet inputs: {exc}") from None

    def _allocate(self) -> None:
        """Size every buffer for the largest shape any profile allows, once."""
        ctx, cuda = self._context, self._cuda.driver
        counts = dict.fromkeys([self._input, *self._outputs], 0)
        for index, profile in enumerate(self.profiles):
            self._use_profile(index)
            if not ctx.set_input_shape(self._input, profile.max):
                raise PoseStreamError(f"TensorRT rejected the profile's own maximum shape {profile.max}")
            counts[self._input] = max(counts[self._input], math.prod(profile.max))
            for name in self._outputs:
                shape = tuple(int(d) for d in ctx.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise PoseStreamError(f"TensorRT could not infer the shape of output {name} for {profile.max}")
                counts[name] = max(counts[name], math.prod(shape))
        wait_for_stream(self._done, self._stream, self._timeout_s, "switching optimization profiles")
        for name, count in counts.items():
            self._device[name] = cuda.mem_alloc(max(count, 1) * self._dtypes[name].itemsize)
            self._host[name] = cuda.pagelocked_empty(max(count, 1), self._dtypes[name])
        log.debug("allocated %s", {n: c * self._dtypes[n].itemsize for n, c in counts.items()})

    def _use_profile(self, index: int) -> None:
        if index == self._profile_index:
            return
        if not self._context.set_optimization_profile_async(index, self._stream.handle):
            raise PoseStreamError(f"TensorRT could not switch to optimization profile {index}: "
                                  f"{trt_logger(self._trt).last_error}")
        self._profile_index = index

    # -- the Backend interface -------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int | None, int, int | None, int | None]:
        dims = []
        for i in range(4):
            values = {p.min[i] for p in self.profiles} | {p.max[i] for p in self.profiles}
            dims.append(values.pop() if len(values) == 1 else None)
        return tuple(dims)  # type: ignore[return-value]

    @property
    def batch_range(self) -> tuple[int, int | None]:
        """The batches the optimization profiles cover together."""
        return min(p.min[0] for p in self.profiles), max(p.max[0] for p in self.profiles)

    @property
    def cuda_context(self) -> CudaContext:
        """The context this backend runs in, for GPU code that consumes `infer_device` outputs."""
        return self._cuda

    def profile_for(self, shape: tuple[int, ...]) -> int:
        """Index of an optimization profile that accepts `shape` (the current one if it does)."""
        shape = tuple(int(d) for d in shape)
        if self.profiles[self._profile_index].contains(shape):
            return self._profile_index
        for index, profile in enumerate(self.profiles):
            if profile.contains(shape):
                return index
        ranges = ", ".join(p.describe() for p in self.profiles)
        raise PoseStreamError(
            f"input shape {'x'.join(map(str, shape))} is outside the engine's optimization profiles ({ranges}); "
            "rebuild it with `pose-stream build-engine --input-size HxW --batch MIN-MAX` to cover it"
        )

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        with self._cuda.active():
            shapes = self._enqueue(batch)
            cuda = self._cuda.driver
            views = []
            for name in self._outputs:
                view = self._host[name][: math.prod(shapes[name])]
                cuda.memcpy_dtoh_async(view, self._device[name], self._stream)
                views.append(view.reshape(shapes[name]))
            wait_for_stream(self._done, self._stream, self._timeout_s, "TensorRT inference")
        # Copies: the pinned buffers are reused by the next call.
        return [v.astype(np.float32, copy=True) for v in views]

    def infer_device(self, batch: np.ndarray) -> DeviceOutputs:
        """Queue inference and return the outputs' device pointers without copying them to the host."""
        with self._cuda.active():
            shapes = self._enqueue(batch)
        tensors = tuple(DeviceTensor(name, int(self._device[name]), shapes[name], self._dtypes[name])
                        for name in self._outputs)
        return DeviceOutputs(tensors, self._stream, self._cuda)

    def _enqueue(self, batch: np.ndarray) -> dict[str, tuple[int, ...]]:
        """Copy `batch` in and queue the network on the stream; returns the output shapes."""
        if self._closed:
            raise PoseStreamError("the TensorRT backend is closed")
        if getattr(batch, "ndim", 0) == 4:
            self.profile_for(batch.shape)  # outside every profile: say so before the generic shape checks
        batch = self.check_input(batch)
        index = self.profile_for(batch.shape)
        ctx, cuda, stream = self._context, self._cuda.driver, self._stream
        self._use_profile(index)
        if not ctx.set_input_shape(self._input, batch.shape):
            raise PoseStreamError(f"TensorRT rejected input shape {batch.shape}: {trt_logger(self._trt).last_error}")
        # The previous call's input copy may still be queued: do not overwrite its pinned source.
        wait_for_event(self._input_free, self._timeout_s, "the previous input copy")
        host = self._host[self._input][: batch.size]
        host[:] = batch.reshape(-1)
        cuda.memcpy_htod_async(self._device[self._input], host, stream)
        self._input_free.record(stream)
        for name, buffer in self._device.items():
            ctx.set_tensor_address(name, int(buffer))
        if not ctx.execute_async_v3(stream.handle):
            raise PoseStreamError(f"TensorRT inference failed: {trt_logger(self._trt).last_error or 'see the log'}")
        return {name: tuple(int(d) for d in ctx.get_tensor_shape(name)) for name in self._outputs}

    # -- cleanup ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Free buffers, stream and TensorRT objects, then release the context; owner thread only."""
        if self._closed:
            return
        self._cuda.check_thread()
        self._closed = True
        self._release()

    def _release(self) -> None:
        cuda_ctx = self.__dict__.get("_cuda")
        if cuda_ctx is None:
            return
        try:
            with cuda_ctx.active():
                stream, done = self.__dict__.get("_stream"), self.__dict__.get("_done")
                if stream is not None and done is not None:
                    try:
                        wait_for_stream(done, stream, self._timeout_s, "the last TensorRT inference")
                    except PoseStreamError as exc:
                        log.error("freeing TensorRT buffers anyway: %s", exc)
                for buffer in self._device.values():
                    buffer.free()
                for array in self._host.values():
                    if hasattr(array.base, "free"):  # pycuda's HostAllocation behind pagelocked arrays
                        array.base.free()
                self._device, self._host = {}, {}
                # TensorRT objects go before the stream and context they use.
                for attr in ("_context", "_engine", "_runtime", "_stream", "_done", "_input_free"):
                    self.__dict__.pop(attr, None)
        finally:
            cuda_ctx.close()
