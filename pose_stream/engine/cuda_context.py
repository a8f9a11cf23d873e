"""One owner for the CUDA context that pycuda work runs in (TensorRT backend, CUDA kernels).

pycuda needs a current context. Rather than creating one (as `pycuda.autoinit` does), this retains
the device's *primary* context, the one the CUDA runtime and therefore PyTorch, TensorRT and ONNX
Runtime use, so memory and streams are shared with them. pycuda ties contexts and the objects made
in them to a thread, so the owner is the creating thread; every use from elsewhere is an error.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from types import ModuleType

from pose_stream._optional import require
from pose_stream.errors import PoseStreamError

log = logging.getLogger(__name__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class CudaContext:
    """The retained primary context of GPU `device`, for the creating thread.

    Wrap CUDA work in `with ctx.active():` (or `activate()` / `deactivate()`, strictly nested);
    `close()` releases the context. GPU code that needs a context shares an instance.
    """

    def __init__(self, device: int = 0) -> None:
        cuda = require("pycuda.driver", "GPU inference through pycuda")
        self._cuda = cuda
        try:
            cuda.init()
            count = cuda.Device.count()
        except Exception as exc:  # pycuda raises its own error types when there is no driver or GPU
            raise PoseStreamError(f"no usable CUDA GPU: {_first_line(exc)}") from None
        if count == 0:
            raise PoseStreamError("no CUDA GPU found (the CUDA driver reports 0 devices)")
        if not 0 <= device < count:
            raise PoseStreamError(f"CUDA device {device} does not exist (this machine has {count})")
        self.device_index = device
        dev = cuda.Device(device)
        self.name: str = dev.name()
        self.compute_capability: tuple[int, int] = tuple(int(v) for v in dev.compute_capability())
        self.total_memory: int = int(dev.total_memory())
        self._context = dev.retain_primary_context()
        self._owner = threading.get_ident()
        self._depth = 0
        self._closed = False

    @property
    def driver(self) -> ModuleType:
        """The `pycuda.driver` module, for code that allocates or launches in this context."""
        return self._cuda

    @property
    def description(self) -> str:
        major, minor = self.compute_capability
        return f"cuda:{self.device_index} ({self.name}, sm_{major}{minor})"

    @property
    def is_active(self) -> bool:
        return self._depth > 0

    def check_thread(self) -> None:
        caller = threading.get_ident()
        if caller != self._owner:
            raise PoseStreamError(
                f"the CUDA context of {self.description} belongs to thread {self._owner} but was used from "
                f"thread {caller}: create GPU objects in the thread that runs them"
            )

    def activate(self) -> None:
        """Make the context current in this thread (pycuda's context stack); nest with deactivate()."""
        if self._closed:
            raise PoseStreamError(f"the CUDA context of {self.description} is closed")
        self.check_thread()
        self._context.push()
        self._depth += 1

    def deactivate(self) -> None:
        self.check_thread()
        if self._depth == 0:
            raise PoseStreamError("CudaContext.deactivate() without a matching activate()")
        self._cuda.Context.pop()
        self._depth -= 1

    @contextlib.contextmanager
    def active(self) -> Iterator["CudaContext"]:
        self.activate()
        try:
            yield self
        finally:
            self.deactivate()

    def close(self) -> None:
        """Release the primary context (idempotent). Free this context's allocations first."""
        if self._closed:
            return
        self.check_thread()
        while self._depth:
            log.warning("closing %s while still active; popping it", self.description)
            self.deactivate()
        self._closed = True
        # detach() drops our reference on the primary context (cuDevicePrimaryCtxRelease); the
        # context itself lives on while PyTorch or others hold theirs.
        self._context.detach()

    def __enter__(self) -> "CudaContext":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def wait_for_event(event, timeout_s: float, what: str) -> None:
    """Block until `event` (a recorded pycuda Event) has happened, at most `timeout_s` seconds.

    Polls instead of `event.synchronize()` so that a hung GPU turns into a one-line error rather
    than a process that never returns.
    """
    deadline = time.monotonic() + timeout_s
    delay = 2e-5
    while not event.query():
        if time.monotonic() > deadline:
            raise PoseStreamError(f"{what} did not finish within {timeout_s:g} s (is the GPU hung or overloaded?)")
        time.sleep(delay)
        delay = min(delay * 2, 2e-4)


def wait_for_stream(event, stream, timeout_s: float, what: str) -> None:
    """Block until the work queued on `stream` so far is done (`event` marks it), at most `timeout_s`."""
    event.record(stream)
    wait_for_event(event, timeout_s, what)
