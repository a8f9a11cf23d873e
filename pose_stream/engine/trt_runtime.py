"""What the TensorRT builder and backend share: importing TensorRT, its logger, parser error reports.

TensorRT >= 10 is required (named I/O tensors, `execute_async_v3`, explicit batch by default).
"""
from __future__ import annotations

import collections
import logging
import threading
from types import ModuleType

from pose_stream._optional import require
from pose_stream.errors import PoseStreamError

log = logging.getLogger(__name__)

MIN_TENSORRT_MAJOR = 10


def import_tensorrt(purpose: str) -> ModuleType:
    """`import tensorrt`, or a one-line error naming the `gpu` extra / the version needed."""
    trt = require("tensorrt", purpose)
    major = int(str(trt.__version__).split(".")[0])
    if major < MIN_TENSORRT_MAJOR:
        raise PoseStreamError(f"{purpose} needs TensorRT >= {MIN_TENSORRT_MAJOR}, found {trt.__version__}")
    return trt


_logger = None
_logger_lock = threading.Lock()


def trt_logger(trt: ModuleType):
    """The process-wide TensorRT logger: forwards to Python logging and remembers recent errors.

    One instance for every builder and runtime, because TensorRT keeps the first logger it is given.
    """
    global _logger
    with _logger_lock:
        if _logger is None:
            _logger = _make_logger(trt)
        return _logger


def _make_logger(trt: ModuleType):
    severity = trt.ILogger.Severity
    levels = {
        severity.INTERNAL_ERROR: logging.CRITICAL,
        severity.ERROR: logging.ERROR,
        severity.WARNING: logging.WARNING,
        severity.INFO: logging.INFO,
        severity.VERBOSE: logging.DEBUG,
    }
    trt_log = logging.getLogger("pose_stream.tensorrt")

    class _LogBridge(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: collections.deque[str] = collections.deque(maxlen=20)

        def log(self, sev, msg):
            level = levels.get(sev, logging.INFO)
            if level >= logging.ERROR:
                self.errors.append(str(msg).strip())
            trt_log.log(level, "%s", msg)

        @property
        def last_error(self) -> str:
            return self.errors[-1] if self.errors else ""

        def clear(self) -> None:
            self.errors.clear()

    return _LogBridge()


def describe_parser_error(desc: str, node_index: int, node_name: str = "", node_operator: str = "") -> str:
    """One line per ONNX parser error, naming the node it happened at when there is one."""
    desc = " ".join(str(desc).split())
    if node_index is None or node_index < 0:
        return f"(graph) {desc}"
    label = f"node #{node_index}"
    if node_name:
        label += f" '{node_name}'"
    if node_operator:
        label += f" ({node_operator})"
    return f"{label}: {desc}"


def parser_errors(parser) -> list[str]:
    """The errors an `trt.OnnxParser` collected, described with `describe_parser_error`."""
    lines = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        # node_name()/node_operator() exist from TensorRT 10 on; degrade to the index if absent.
        name = error.node_name() if hasattr(error, "node_name") else ""
        op = error.node_operator() if hasattr(error, "node_operator") else ""
        lines.append(describe_parser_error(error.desc(), int(error.node()), name or "", op or ""))
    return lines
