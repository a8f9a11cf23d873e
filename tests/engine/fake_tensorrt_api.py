"""The small shared vocabulary of the fake `tensorrt` (see fake_gpu.py): its plan and timing-cache formats,
and the enums and interfaces pose-stream subclasses or compares with (made fresh for each fake module)."""
from __future__ import annotations

import enum
import types

PLAN_MAGIC = "FAKE-TENSORRT-PLAN"  # a fake plan is JSON with "magic": PLAN_MAGIC (fake_tensorrt_builder writes it)
TIMING_MAGIC = b"FAKE-TIMING-CACHE:"  # a fake timing cache is TIMING_MAGIC + its entry count


def make_api_types() -> types.SimpleNamespace:
    """Severity (as ILogger.Severity), ILogger, IProgressMonitor, TensorIOMode and DataType."""

    class Severity(enum.IntEnum):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    class ILogger:
        def __init__(self) -> None:
            pass

    ILogger.Severity = Severity

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    class TensorIOMode(enum.Enum):
        NONE, INPUT, OUTPUT = range(3)

    class DataType(enum.Enum):
        FLOAT = 0

    return types.SimpleNamespace(Severity=Severity, ILogger=ILogger, IProgressMonitor=IProgressMonitor,
                                 TensorIOMode=TensorIOMode, DataType=DataType)
