"""Prometheus metrics of a run (`/metrics`), with the official prometheus-client, in a registry of the run's own.

Counters that the pipeline already keeps (frames read, dropped, reconnects) are read from it when Prometheus
scrapes, by a collector, rather than counted twice; what only exists per frame (stage times, latency) goes into
histograms as each frame is output.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pose_stream.pipeline.frames import FrameResult
from pose_stream.pipeline.sources.base import SourceState

STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class RunMetrics:
    """The metrics of one run. `observe` once per output frame (output stage); `exposition` from any thread."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stage_seconds = Histogram("pose_stream_stage_seconds", "Seconds a frame spent in each pipeline stage",
                                       ["stage"], buckets=STAGE_BUCKETS, registry=self.registry)
        self.latency = Histogram("pose_stream_latency_seconds", "Seconds from capture to poses ready, per source",
                                 ["source"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._collector = _PipelineCollector()
        self.registry.register(self._collector)

    def bind(self, sources: Sequence[Any], stats: Any, per_source: Callable[[int], dict]) -> None:
        """The run's sources (their SourceStatus), PipelineStats, and the live view's per-source numbers."""
        self._collector.sources, self._collector.stats, self._collector.per_source = sources, stats, per_source

    def observe(self, result: FrameResult) -> None:
        for stage, seconds in result.timings.items():
            self.stage_seconds.labels(stage).observe(seconds)
        self.latency.labels(result.frame.source_id).observe(result.latency)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric now."""
        return generate_latest(self.registry)


class _PipelineCollector(Collector):
    def __init__(self) -> None:
        self.sources: Sequence[Any] = ()
        self.stats: Any = None
        self.per_source: Callable[[int], dict] = lambda index: {}

    def collect(self) -> Iterator[Any]:
        labels = ["source"]
        read = CounterMetricFamily("pose_stream_frames_read", "Frames read from the source", labels=labels)
        processed = CounterMetricFamily("pose_stream_frames_processed", "Frames with poses output", labels=labels)
        dropped = CounterMetricFamily("pose_stream_frames_dropped",
                                      "Frames dropped before inference (live sources keep only the newest)",
                                      labels=labels)
        reconnects = CounterMetricFamily("pose_stream_reconnects", "Reconnections of the source", labels=labels)
        stalls = CounterMetricFamily("pose_stream_stalls", "Times the source stopped delivering frames", labels=labels)
        state = GaugeMetricFamily("pose_stream_source_state", "1 for the state the source is in, else 0",
                                  labels=["source", "state"])
        people = GaugeMetricFamily("pose_stream_people", "People in the source's latest frame", labels=labels)
        fps = GaugeMetricFamily("pose_stream_fps", "Frames per second output for the source, recently",
                                labels=labels)
        drops = list(getattr(self.stats, "input_drops", []))
        for index, source in enumerate(self.sources):
            status = source.status.snapshot()
            name = [status["source"]]
            live = self.per_source(index)
            read.add_metric(name, status["frames_read"])
            processed.add_metric(name, live.get("frames", 0))
            dropped.add_metric(name, drops[index] if index < len(drops) else 0)
            reconnects.add_metric(name, status["reconnects"])
            stalls.add_metric(name, status["stalls"])
            for value in SourceState:
                state.add_metric([status["source"], value.value], 1.0 if status["state"] == value.value else 0.0)
            people.add_metric(name, live.get("people", 0))
            fps.add_metric(name, live.get("fps") or 0.0)
        yield from (read, processed, dropped, reconnects, stalls, state, people, fps)
