"""How a Pipeline runs (PipelineConfig) and how it fails (PipelineError)."""
from __future__ import annotations

from dataclasses import dataclass

from pose_stream.errors import PoseStreamError
from pose_stream.tracking.config import SmoothingConfig, TrackingConfig


@dataclass(frozen=True)
class PipelineConfig:
    """How the pipeline runs.

    Attributes:
        max_frames: stop after this many frames in total (None: until every source ends or stop()).
        queue_size: capacity of each queue between stages (small: latency, not throughput, is the goal).
        file_buffer: frames read ahead per file source.
        drain_timeout: after stop(), seconds to finish frames in flight before abandoning them.
        join_timeout: seconds to wait for the threads when the run ends; None (the default) waits until they
            have all returned (each finishes the native call it is in first). With a number, `run` may return
            while a thread still runs (see `alive_threads`).
        aggregate_in_infer_thread: run `aggregate` in the inference thread (for estimators whose aggregation
            uses the backend's CUDA context) instead of a thread of its own. An estimator with a true
            `aggregate_in_infer_thread` attribute (PoseEstimator with TensorRT device outputs) gets this anyway.
        overlay: write FPS, latency and source state on rendered frames.
        batch: frames the inference stage gathers, round robin across sources, into one network call (with
            their flipped copies): it runs as soon as `batch` frames wait, or `batch_wait` seconds after the
            oldest of them was captured, whichever comes first.
        batch_wait: seconds, see `batch`.
        min_score: people scoring below this are left out of every output (what is drawn is what the JSON and
            COCO results hold); 0 keeps every fragment the decoder reports.
        tracking: how people are tracked on video sources (each gets a `track_id`); None: not tracked. Image
            folders are never tracked (their images are unrelated).
        smoothing: One-Euro smoothing of tracked people's joints; None: positions as found. Needs tracking.
        warm_up: before any source is opened, run the estimator's `warm_up` (when it has one) in the inference
            thread: loading the network, the first call's allocations and the decoding kernels would otherwise
            be the first frames' latency (about a second for the demo model on a CPU; half a minute more the
            first time after an install, while Numba compiles the kernels).
    """

    max_frames: int | None = None
    queue_size: int = 2
    file_buffer: int = 4
    drain_timeout: float = 1.5
    join_timeout: float | None = None
    aggregate_in_infer_thread: bool = False
    overlay: bool = True
    batch: int = 1
    batch_wait: float = 0.01
    min_score: float = 0.0
    tracking: TrackingConfig | None = None
    smoothing: SmoothingConfig | None = None
    warm_up: bool = True

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError("max_frames must be at least 1")
        if self.queue_size < 1 or self.file_buffer < 1:
            raise ValueError("queue_size and file_buffer must be at least 1")
        if self.drain_timeout < 0 or (self.join_timeout is not None and self.join_timeout <= 0):
            raise ValueError("drain_timeout must be >= 0 and join_timeout > 0 (or None)")
        if not 0 <= self.min_score < float("inf"):
            raise ValueError("min_score must be a finite number >= 0")
        if self.batch < 1 or not 0 <= self.batch_wait < float("inf"):
            raise ValueError("batch must be at least 1 and batch_wait a finite number of seconds >= 0")
        if self.smoothing is not None and self.tracking is None:
            raise ValueError("smoothing follows tracked people: it needs tracking")


class PipelineError(PoseStreamError):
    """A stage failed with an unexpected error (domain errors are re-raised as they are)."""
