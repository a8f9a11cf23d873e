"""Lazy imports of optional heavy dependencies, failing with the name of the extra to install."""
from __future__ import annotations

import importlib
from types import ModuleType

from pose_stream.errors import MissingExtraError

# Which `pip install 'pose-stream[EXTRA]'` provides each optional module.
_EXTRA_OF = {
    "tensorrt": "gpu",
    "pycuda": "gpu",
    "pycuda.driver": "gpu",
    "pycocotools": "eval",
    "matplotlib": "bench",
    "tritonclient": "triton",
    "trackers": "bytetrack",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import `module` or raise MissingExtraError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingExtraError(top, _EXTRA_OF.get(module, _EXTRA_OF.get(top, "gpu")), purpose) from exc


def available(module: str) -> bool:
    """True when `module` imports (without raising for anything it does on import)."""
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken optional install counts as absent
        return False
    return True
