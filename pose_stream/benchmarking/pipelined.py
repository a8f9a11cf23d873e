"""The "pipeline" measurement: the bench clip through the real threaded `Pipeline`, headless.

The pipeline runs `warmup + frames` frames; a bookkeeping sink (no rendering, no output work) copies every result
after the warm-up ones into a `PipelineStats` of its own, so FPS, latency percentiles and stage timings describe
the timed frames only, computed by the pipeline's own statistics code.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pose_stream.benchmarking.stats import StageStats
from pose_stream.pipeline import GeneratedSource, Pipeline, PipelineConfig, PipelineStats, Sink
from pose_stream.pipeline.frames import FrameResult

PIPELINE_STAGES = ("prepare", "infer", "aggregate", "group")
SOURCE_ID = "bench-clip"


class TimedFramesSink(Sink):
    """Records the results after the first `skip` into `stats` (the warm-up frames are left out) and calls
    `on_timed` after each recorded one (a progress bar)."""

    def __init__(self, skip: int, on_timed: Callable[[], Any] | None = None) -> None:
        self.skip = skip
        self.seen = 0
        self.stats = PipelineStats([SOURCE_ID])
        self._on_timed = on_timed

    def write(self, result: FrameResult) -> None:
        self.seen += 1
        if self.seen > self.skip:
            self.stats.record(0, result.latency, result.timings, len(result.poses))
            if self._on_timed is not None:
                self._on_timed()


class RenderedOutputsEstimator:
    """Passes the stages through to `estimator`, but aggregates the rendered outputs of frame i in place of the
    network's (synthetic decoding, as the serial end-to-end path does). Frames are numbered as they are
    prepared: one source, every frame processed in order."""

    def __init__(self, estimator, substitute: Callable[[Any, int], Any]) -> None:
        self._estimator = estimator
        self._substitute = substitute
        self._numbers = itertools.count()

    @property
    def backend_info(self):
        return self._estimator.backend_info

    @property
    def aggregate_in_infer_thread(self) -> bool:
        return bool(getattr(self._estimator, "aggregate_in_infer_thread", False))

    def prepare(self, image_bgr: np.ndarray) -> tuple[Any, int]:
        return self._estimator.prepare(image_bgr), next(self._numbers)

    def infer(self, prepared: tuple[Any, int]) -> tuple[Any, int]:
        inputs, number = prepared
        return self._estimator.infer(inputs), number

    def aggregate(self, raw: tuple[Any, int]) -> Any:
        outputs, number = raw
        return self._estimator.aggregate(self._substitute(outputs, number))

    def group(self, aggregated: Any) -> Any:
        return self._estimator.group(aggregated)

    def close(self) -> None:
        self._estimator.close()


def run_pipeline(estimator, frame: Callable[[int], np.ndarray], frames: int, warmup: int,
                 size_wh: tuple[int, int], on_timed: Callable[[], Any] | None = None) -> tuple[PipelineStats, Any]:
    """Run `warmup + frames` clip frames (frame(i) -> BGR image) through a Pipeline that owns (and closes)
    `estimator`; returns the statistics of the timed frames and the estimator's BackendInfo (read in the
    inference thread, before the pipeline closes the backend)."""

    def clip(num_frames: int, _size: tuple[int, int]) -> Iterator[np.ndarray]:
        return (frame(i) for i in range(num_frames))

    sink = TimedFramesSink(warmup, on_timed)
    total = warmup + frames
    source = GeneratedSource(total, size_wh, source_id=SOURCE_ID, frames=clip)
    backend: list[Any] = []
    pipeline = Pipeline(estimator, [source], [sink], PipelineConfig(max_frames=total, overlay=False),
                        on_backend_ready=backend.append)
    pipeline.run()
    return sink.stats, backend[0] if backend else None


def latency_ms(stats: PipelineStats) -> dict[str, float | None]:
    """End-to-end latency (capture to poses) percentiles of the timed frames, in milliseconds."""
    return {name: value for name, value in stats.to_dict()["latency_ms"].items() if name in ("p50", "p95", "p99")}


def stage_stats(stats: PipelineStats) -> dict[str, StageStats]:
    """Per-stage median / p99 / mean of the timed frames, from the pipeline's own samples."""
    stages = {}
    for name in PIPELINE_STAGES:
        samples = stats.stage_seconds[name]
        if samples.count:
            median, p99 = samples.percentiles((50, 99))
            stages[name] = StageStats(median * 1e3, p99 * 1e3, samples.mean * 1e3, samples.count)
    return stages
