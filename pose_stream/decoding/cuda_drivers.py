"""The two ways to run aggregate.cu: pycuda (SourceModule, nvcc at run time) and CuPy (RawModule, NVRTC).

A driver compiles the source into the current CUDA context and offers what `aggregate_cuda.CudaAggregator`
needs: launching a kernel on a stream, device and pinned host buffers, copies, synchronisation.
"""
from __future__ import annotations

import ctypes
import importlib.resources
from typing import Any

import numpy as np

from pose_stream._optional import require
from pose_stream.errors import PoseStreamError

SOURCE_NAME = "aggregate.cu"
# No fast math: exact float32 division and square root, subnormals kept, no contraction into FMAs.
COMPILE_OPTIONS = ("--fmad=false", "--ftz=false", "--prec-div=true", "--prec-sqrt=true")


def kernel_source() -> str:
    """The CUDA C source of the aggregation kernels."""
    return importlib.resources.files("pose_stream.decoding").joinpath(SOURCE_NAME).read_text(encoding="utf-8")


class _PyCudaDriver:
    """Compiles the source with pycuda's SourceModule into the current context; launches on pycuda streams."""

    def __init__(self, source: str) -> None:
        self._cuda = require("pycuda.driver", "the CUDA aggregation")
        compiler = require("pycuda.compiler", "the CUDA aggregation")
        self._module = compiler.SourceModule(source, options=list(COMPILE_OPTIONS), no_extern_c=True)
        self._functions: dict[str, Any] = {}
        self._allocations: dict[int, Any] = {}

    def alloc(self, nbytes: int) -> int:
        allocation = self._cuda.mem_alloc(max(nbytes, 1))
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, ptr: int) -> None:
        self._allocations.pop(ptr).free()

    def pinned(self, nbytes: int) -> np.ndarray:
        return self._cuda.pagelocked_empty(max(nbytes, 1), np.uint8)

    def free_pinned(self, array: np.ndarray) -> None:
        array.base.free()

    def launch(self, name: str, grid: tuple, block: tuple, args: tuple, stream: Any) -> None:
        if name not in self._functions:
            self._functions[name] = self._module.get_function(name)
        self._functions[name](*args, block=block, grid=grid, stream=stream)

    def to_device(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        if stream is None:  # also for pageable host memory (the one-off table uploads)
            self._cuda.memcpy_htod(ptr, host)
        else:
            self._cuda.memcpy_htod_async(ptr, host, stream)

    def to_host(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        if stream is None:
            self._cuda.memcpy_dtoh(host, ptr)
        else:
            self._cuda.memcpy_dtoh_async(host, ptr, stream)

    def synchronize(self, stream: Any) -> None:
        if stream is None:
            self._cuda.Context.synchronize()
        else:
            stream.synchronize()

    def close(self) -> None:
        self._functions.clear()
        self._module = None


class _CupyDriver:
    """The same kernels through CuPy's RawModule (NVRTC); streams are cupy streams or raw handles."""

    def __init__(self, source: str) -> None:
        self._cp = require("cupy", "the CUDA aggregation through CuPy")
        self._module = self._cp.RawModule(code=source, options=COMPILE_OPTIONS)
        self._runtime = self._cp.cuda.runtime
        self._pinned: dict[int, int] = {}

    def _stream(self, stream: Any) -> Any:
        if stream is None:
            return self._cp.cuda.Stream.null
        if isinstance(stream, int):
            return self._cp.cuda.ExternalStream(stream)
        return stream

    def alloc(self, nbytes: int) -> int:
        return int(self._runtime.malloc(max(nbytes, 1)))

    def free(self, ptr: int) -> None:
        self._runtime.free(ptr)

    def pinned(self, nbytes: int) -> np.ndarray:
        nbytes = max(nbytes, 1)
        ptr = int(self._runtime.hostAlloc(nbytes, 0))
        array = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))
        self._pinned[array.ctypes.data] = ptr
        return array

    def free_pinned(self, array: np.ndarray) -> None:
        self._runtime.freeHost(self._pinned.pop(array.ctypes.data))

    def launch(self, name: str, grid: tuple, block: tuple, args: tuple, stream: Any) -> None:
        with self._stream(stream):
            self._module.get_function(name)(grid, block, args)

    def to_device(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        self._runtime.memcpyAsync(
            ptr, host.ctypes.data, host.nbytes, self._runtime.memcpyHostToDevice, self._stream(stream).ptr
        )

    def to_host(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        self._runtime.memcpyAsync(
            host.ctypes.data, ptr, host.nbytes, self._runtime.memcpyDeviceToHost, self._stream(stream).ptr
        )

    def synchronize(self, stream: Any) -> None:
        self._stream(stream).synchronize()

    def close(self) -> None:
        self._module = None


DRIVERS: dict[str, type] = {"pycuda": _PyCudaDriver, "cupy": _CupyDriver}


def compile_kernels(driver: str = "pycuda") -> None:
    """Compile aggregate.cu in the current context once, raising a one-line PoseStreamError if it cannot be
    (pycuda compiles with nvcc at run time: a machine with the CUDA driver but no toolkit fails here)."""
    if driver not in DRIVERS:
        raise PoseStreamError(f"unknown CUDA driver {driver!r}; choose one of {sorted(DRIVERS)}")
    try:
        module = DRIVERS[driver](kernel_source())
    except PoseStreamError:
        raise
    except Exception as exc:  # compilers raise their own error types (pycuda's CompileError, CuPy's)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PoseStreamError(f"the CUDA aggregation kernels do not compile here ({driver}): {first}") from None
    module.close()


