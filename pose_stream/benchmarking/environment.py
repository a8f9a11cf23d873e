"""What a benchmark figure was measured on: date, machine, library versions."""
from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import os
import platform
from typing import Any

# distribution -> module whose __version__ is reported
_VERSIONED = {"torch": "torch", "onnxruntime": "onnxruntime", "numpy": "numpy", "numba": "numba",
              "opencv": "cv2", "tensorrt": "tensorrt", "pycuda": "pycuda", "pose-stream": "pose_stream"}


def _version_of(module: Any, distribution: str) -> str:
    """`__version__`, else pycuda's VERSION_TEXT, else the installed distribution's metadata."""
    found = getattr(module, "__version__", None) or getattr(module, "VERSION_TEXT", None)
    if found:
        return str(found)
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def collect_environment() -> dict[str, Any]:
    """Date (local, ISO 8601), CPU, GPU, Python and library versions (None where a library is absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for label, module in _VERSIONED.items():
        try:
            imported = importlib.import_module(module)
        except Exception:  # noqa: BLE001 - a broken optional install is reported as absent
            versions[label] = None
            continue
        versions[label] = _version_of(imported, label)
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_name(),
        "cpu_cores": os.cpu_count(),
        "gpu": _gpu_name(),
        "platform": platform.platform(),
        "versions": versions,
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: platform.processor() below
    return platform.processor() or "unknown CPU"


def _gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def describe(environment: dict[str, Any]) -> str:
    """One line for report headers."""
    v = environment["versions"]
    device = environment["gpu"] or f"{environment['cpu']} ({environment['cpu_cores']} cores)"
    libs = ", ".join(f"{name} {version}" for name, version in v.items() if version)
    return f"{environment['date']} on {device}; {libs}"
