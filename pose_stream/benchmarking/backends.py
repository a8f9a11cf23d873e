"""Backend choices of `pose-stream bench` and `pose-stream eval`: lists of names ("torch,onnxruntime", "all").

The backends themselves are `pose_stream.engine.registry.BACKENDS`. Engine-only runs open a `Backend` with
`registry.open_backend`; end-to-end runs build a `PoseEstimator` with the same spec, so both time the same engine.
"""
from __future__ import annotations

import logging
from typing import Any

from pose_stream.engine.registry import BACKENDS, BackendSpec, unavailable_reason
from pose_stream.errors import PoseStreamError

BACKEND_SPECS = BACKENDS  # the registry's list, under the name the benchmarks have used

log = logging.getLogger(__name__)


def parse_backends(text: str) -> tuple[BackendSpec, ...]:
    """'torch,onnxruntime' -> specs; 'all' -> every spec present here. Unknown or absent ones are refused."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise PoseStreamError("--backend needs at least one name")
    if names == ["all"]:
        # "all" means the backends of this machine; a Triton server is named explicitly (--backend triton).
        present = tuple(spec for spec in BACKEND_SPECS.values()
                        if unavailable_reason(spec) is None and spec.framework != "triton")
        if not present:
            raise PoseStreamError("no backend is available here")
        return present
    specs = []
    for name in names:
        spec = BACKEND_SPECS.get(name)
        if spec is None:
            raise PoseStreamError(f"unknown backend {name!r}; choose from {', '.join(BACKEND_SPECS)} or all")
        reason = unavailable_reason(spec)
        if reason:
            raise PoseStreamError(f"backend {name} is not available here: {reason}")
        specs.append(spec)
    return tuple(dict.fromkeys(specs))


def build_estimator(spec: BackendSpec | None, **options: Any):
    """A `PoseEstimator` running `spec` (None: backend "auto"); options go to PoseEstimator as they are
    (model, weights, onnx, engine, input_size, flip, scales, device)."""
    from pose_stream.estimator import PoseEstimator

    return PoseEstimator(backend="auto" if spec is None else spec.name, **options)
