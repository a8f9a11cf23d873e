"""A stand-in for `pycuda.driver` (see fake_gpu.py): device memory is host memory behind fake pointers.

`make_pycuda_driver(state)` builds a fresh module whose classes and functions all record into one CudaState.
"""
from __future__ import annotations

import itertools
import types

import numpy as np

# Fake device addresses: allocation n starts at BASE + n * STRIDE (tests/support/emulated_cuda.py uses the same map).
BASE, STRIDE = 1 << 40, 1 << 32


class CudaState:
    """Everything the fake driver tracks, for assertions."""

    def __init__(self, devices=(("NVIDIA Fake GPU", (9, 0)),)) -> None:
        self.devices = list(devices)
        self.memory: dict[int, np.ndarray] = {}
        self.next_pointer = itertools.count(BASE, STRIDE)
        self.copies = {"htod": 0, "dtoh": 0, "dtod": 0}  # bytes copied each way
        self.context_stack: list[object] = []
        self.retained = 0
        self.host_allocations: list[object] = []


def make_driver_errors(state: CudaState) -> tuple[type, types.FunctionType, types.FunctionType]:
    """The driver's Error, `init` (fails without devices) and the check that a context is current."""

    class Error(Exception):
        pass

    def init() -> None:
        if not state.devices:
            raise Error("cuInit failed: no CUDA-capable device is detected")

    def require_context() -> None:
        if not state.context_stack:
            raise Error("no currently active context")

    return Error, init, require_context


def make_devices(state: CudaState, Error: type) -> tuple[type, type]:
    """`Device` (from state.devices) and the primary `Context` it retains, pushed on state.context_stack."""

    class Context:
        def __init__(self, index: int) -> None:
            self.index, self.detached = index, False

        def push(self) -> None:
            state.context_stack.append(self)

        @staticmethod
        def pop() -> None:
            if not state.context_stack:
                raise Error("cannot pop non-current context")
            state.context_stack.pop()

        def detach(self) -> None:
            assert not self.detached, "detached twice"
            self.detached = True
            state.retained -= 1

    class Device:
        def __init__(self, index: int) -> None:
            self.index = index

        @staticmethod
        def count() -> int:
            return len(state.devices)

        def name(self) -> str:
            return state.devices[self.index][0]

        def compute_capability(self) -> tuple[int, int]:
            return state.devices[self.index][1]

        def total_memory(self) -> int:
            return 80 << 30

        def retain_primary_context(self) -> Context:
            state.retained += 1
            return Context(self.index)

    return Context, Device


def make_allocations(state: CudaState, require_context) -> tuple[type, types.FunctionType]:
    """`mem_alloc` (device memory in state.memory) and `pagelocked_empty` (host memory in state.host_allocations)."""

    class DeviceAllocation:
        def __init__(self, nbytes: int) -> None:
            require_context()
            self.pointer = next(state.next_pointer)
            state.memory[self.pointer] = np.zeros(nbytes, dtype=np.uint8)

        def __int__(self) -> int:
            return self.pointer

        def free(self) -> None:
            require_context()
            del state.memory[self.pointer]

    class HostAllocation(bytearray):
        freed = False

        def free(self) -> None:
            self.freed = True

    def pagelocked_empty(count: int, dtype) -> np.ndarray:
        require_context()
        allocation = HostAllocation(int(count) * np.dtype(dtype).itemsize)
        state.host_allocations.append(allocation)
        return np.ndarray((int(count),), dtype=dtype, buffer=allocation)  # .base is the allocation, as in pycuda

    return DeviceAllocation, pagelocked_empty


def make_streams(require_context) -> tuple[type, type]:
    """`Stream` (numbered handles) and `Event` (always complete: the fake GPU finishes everything at once)."""

    class Stream:
        handles = itertools.count(1)

        def __init__(self) -> None:
            require_context()
            self.handle = next(Stream.handles)

    class Event:
        def __init__(self, flags: int = 0) -> None:
            self.recorded = False

        def record(self, stream=None) -> None:
            self.recorded = True

        def query(self) -> bool:
            return True  # the fake GPU finishes everything at once

    return Stream, Event


def make_copies(state: CudaState, Error: type, require_context) -> types.SimpleNamespace:
    """`device_bytes` (a view of device memory at a pointer) and the memcpy functions, counted in state.copies."""

    def _device_bytes(pointer: int, nbytes: int) -> np.ndarray:
        """The bytes at a device address, which may point inside an allocation."""
        pointer = int(pointer)
        base = BASE + (pointer - BASE) // STRIDE * STRIDE
        if base not in state.memory:
            raise Error(f"invalid device pointer {pointer:#x}")
        buffer, offset = state.memory[base], pointer - base
        if offset + nbytes > buffer.size:
            raise Error(f"copy of {nbytes} bytes at offset {offset} overruns a {buffer.size}-byte allocation")
        return buffer[offset:offset + nbytes]

    def memcpy_htod_async(dest, src: np.ndarray, stream=None) -> None:
        require_context()
        data = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
        _device_bytes(dest, data.size)[:] = data
        state.copies["htod"] += data.size

    def memcpy_dtoh_async(dest: np.ndarray, src, stream=None) -> None:
        require_context()
        out = dest.reshape(-1).view(np.uint8)
        out[:] = _device_bytes(src, out.size)
        state.copies["dtoh"] += out.size

    def memcpy_dtod_async(dest, src, size: int, stream=None) -> None:
        require_context()
        _device_bytes(dest, size)[:] = _device_bytes(src, size)
        state.copies["dtod"] += size

    return types.SimpleNamespace(device_bytes=_device_bytes, htod=memcpy_htod_async, dtoh=memcpy_dtoh_async,
                                 dtod=memcpy_dtod_async)


def make_pycuda_driver(state: CudaState) -> types.ModuleType:
    """A fresh `pycuda.driver` module backed by `state`."""
    cuda = types.ModuleType("pycuda.driver")
    Error, init, require_context = make_driver_errors(state)
    Context, Device = make_devices(state, Error)
    DeviceAllocation, pagelocked_empty = make_allocations(state, require_context)
    Stream, Event = make_streams(require_context)
    copies = make_copies(state, Error, require_context)

    cuda.Error, cuda.init, cuda.Context, cuda.Device = Error, init, Context, Device
    cuda.mem_alloc, cuda.pagelocked_empty, cuda.Stream, cuda.Event = DeviceAllocation, pagelocked_empty, Stream, Event
    cuda.memcpy_htod_async, cuda.memcpy_dtoh_async = copies.htod, copies.dtoh
    cuda.memcpy_htod, cuda.memcpy_dtoh, cuda.memcpy_dtod_async = copies.htod, copies.dtoh, copies.dtod
    cuda.event_flags = types.SimpleNamespace(DISABLE_TIMING=2)
    cuda.device_bytes = copies.device_bytes
    return cuda
