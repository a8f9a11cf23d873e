"""A real Triton Inference Server for the tests and benchmarks: PyTriton's bundled tritonserver, run from its
own virtual environment (nvidia-pytriton 0.7.0 needs numpy < 2; the project's OpenCV needs numpy >= 2) with
`serve_onnx.py`, serving an exported model through ONNX Runtime behind Triton's dynamic batcher.

The environment's interpreter is $POSE_STREAM_TRITON_PYTHON, or .triton-venv/bin/python in the repository
(`.ci/run` makes it: python -m venv .triton-venv && .triton-venv/bin/pip install nvidia-pytriton==0.7.0
onnxruntime "numpy<2").
"""
from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sysconfig
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
READY_LINE = "pose-stream triton server: serving"  # serve_onnx.py prints it once the model is ready
SHARED_MEMORY = Path("/dev/shm")
# PyTriton's proxy and data store keep tensors in POSIX shared memory under these names; a killed server cannot
# unlink them, and each left behind holds up to 4 MiB of RAM until the machine restarts.
SERVER_SEGMENTS = ("psm_", "pytrtion")


def server_segments() -> set[str]:
    """Names of PyTriton's shared-memory segments now in /dev/shm (empty where there is none)."""
    if not SHARED_MEMORY.is_dir():
        return set()
    return {p.name for p in SHARED_MEMORY.iterdir() if p.name.startswith(SERVER_SEGMENTS)}


def triton_python() -> Path | None:
    configured = os.environ.get("POSE_STREAM_TRITON_PYTHON")
    candidate = Path(configured) if configured else ROOT / ".triton-venv" / "bin" / "python"
    return candidate if candidate.is_file() else None


TRITON_MISSING = None if triton_python() else (
    "no Triton server environment: python -m venv .triton-venv && .triton-venv/bin/pip install "
    "nvidia-pytriton==0.7.0 onnxruntime 'numpy<2' (or set POSE_STREAM_TRITON_PYTHON)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonServer:
    """The server process (its own process group, so that tritonserver under it goes too)."""

    def __init__(self, onnx: Path, name: str = "pose", max_batch: int = 16, queue_delay_us: int = 20000) -> None:
        self.onnx, self.name = onnx, name
        self.max_batch, self.queue_delay_us = max_batch, queue_delay_us
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.process: subprocess.Popen | None = None
        self._segments_before: set[str] | None = None
        self._lines: collections.deque[str] = collections.deque(maxlen=200)  # the server's latest output

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 90.0) -> "TritonServer":
        if self._segments_before is None:
            self._segments_before = server_segments()
        env = dict(os.environ)
        # The Python backend's stub must load this interpreter's libpython (else: "_recursion_count" errors).
        libdir = sysconfig.get_config_var("LIBDIR")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p)
        env.pop("PYTHONPATH", None)
        self.process = subprocess.Popen(
            [str(triton_python()), str(HERE / "serve_onnx.py"), str(self.onnx), "--name", self.name,
             "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
             "--metrics-port", str(self.metrics_port), "--max-batch", str(self.max_batch),
             "--queue-delay-us", str(self.queue_delay_us)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        # Read the server's output in a thread for its whole life: a pipe nobody reads fills up and blocks the
        # server at its next log line; and a blocking readline could not honour the start-up deadline.
        self._lines.clear()
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(self.process, ready), daemon=True).start()
        if ready.wait(timeout):
            return self
        self.kill()
        raise RuntimeError("the Triton server did not start:\n" + "".join(list(self._lines)[-30:]))

    def _read_output(self, process: subprocess.Popen, ready: threading.Event) -> None:
        for line in process.stdout:
            self._lines.append(line)
            if READY_LINE in line:  # tritonserver writes to the same pipe: its output may share the line
                ready.set()
        process.stdout.close()

    def kill(self) -> None:
        """Kill the server at once (as a crash would), then unlink the shared memory it could not."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)
        self.process = None
        self._unlink_left_segments()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server as Ctrl-C would (PyTriton shuts tritonserver down and frees its memory), else kill it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def _unlink_left_segments(self) -> None:
        # Only segments that appeared while this server ran: one server runs at a time in the tests and benchmarks.
        for name in server_segments() - (self._segments_before or set()):
            (SHARED_MEMORY / name).unlink(missing_ok=True)
