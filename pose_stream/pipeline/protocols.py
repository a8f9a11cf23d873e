"""What the pipeline needs from a pose estimator: its four stages, run in separate threads, and `close`.

`pose_stream.PoseEstimator` implements this; the tests use a fast fake.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from pose_stream.poses import Poses


@runtime_checkable
class StageEstimator(Protocol):
    """A pose estimator split into stages.

    The pipeline calls `infer` and `close` only from its inference thread (which creates the backend on the
    first `infer` and so owns any CUDA context); `prepare` runs there too, `aggregate` and `group` each in
    their own thread. An estimator may add `aggregate_in_infer_thread = True` (its outputs live on the GPU
    only until the next `infer`): `aggregate` then runs in the inference thread, right after each `infer`.
    """

    def prepare(self, image_bgr: np.ndarray) -> Any:
        """uint8 BGR (H, W, 3) -> network inputs (all scales and the flip) and the image transform."""

    def infer(self, prepared: Any) -> Any:
        """Run the network on prepared inputs -> raw outputs. An estimator may also have
        `infer_batch(list of prepared) -> list of raw outputs`, which the pipeline uses for batches of frames
        (otherwise it calls `infer` once per frame)."""

    def aggregate(self, raw: Any) -> Any:
        """Raw outputs -> aggregated heatmaps, tags and joint candidates."""

    def group(self, aggregated: Any) -> Poses:
        """Aggregated maps -> the people in the image."""

    def close(self) -> None:
        """Release the backend; idempotent."""
