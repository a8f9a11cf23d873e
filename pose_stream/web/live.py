"""What the browser view shows, kept up to date by a pipeline sink: per source the latest annotated frame (JPEG
encoded once per frame, on demand, by whoever asks first), its poses, and its numbers."""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pose_stream.pipeline.frames import FrameResult
from pose_stream.pipeline.sinks import Sink, SinkContext
from pose_stream.web.metrics import RunMetrics

JPEG_QUALITY = 80


@dataclass
class _SourceView:
    source_id: str
    frames: int = 0
    frame_index: int = -1
    image: np.ndarray | None = None      # the latest annotated frame (a reference: the pipeline never reuses it)
    jpeg: bytes | None = None
    jpeg_frames: int = -1                # `frames` when `jpeg` was encoded
    poses: dict[str, Any] | None = None
    people: int = 0
    latency: float = math.nan
    wall_time: float = 0.0
    arrivals: deque = field(default_factory=lambda: deque(maxlen=32))

    def fps(self) -> float | None:
        if len(self.arrivals) < 2 or self.arrivals[-1] == self.arrivals[0]:
            return None
        return (len(self.arrivals) - 1) / (self.arrivals[-1] - self.arrivals[0])


class LiveView(Sink):
    """A sink that keeps the newest result of each source for the web server (and Prometheus metrics).

    `write` runs in the pipeline's output stage and only stores references: encoding happens in the server's
    threads, once per frame however many browsers watch.

    Args:
        sources: the run's sources, so that the page lists them (connecting) before the run starts; otherwise
            they appear when it does.
        jpeg_quality: of the streamed frames, 0-100.
    """

    needs_render = True

    def __init__(self, sources: Sequence[Any] = (), jpeg_quality: int = JPEG_QUALITY) -> None:
        self.jpeg_quality = jpeg_quality
        self.metrics = RunMetrics()
        self._lock = threading.Lock()
        self._sources = list(sources)
        self._views = [_SourceView(s.source_id) for s in self._sources]
        self._stats: Any = None
        self.ended = False
        self.metrics.bind(self._sources, None, self._numbers)

    # -- the pipeline's side ------------------------------------------------------------------------
    def start(self, context: SinkContext) -> None:
        if [s.source_id for s in context.sources] != [v.source_id for v in self._views]:
            self._views = [_SourceView(s.source_id) for s in context.sources]
        self._sources, self._stats = list(context.sources), context.stats
        self.metrics.bind(self._sources, self._stats, self._numbers)

    def write(self, result: FrameResult) -> None:
        view = self._views[result.frame.source_index]
        image = result.annotated if result.annotated is not None else result.frame.image
        with self._lock:
            view.frames += 1
            view.frame_index = result.frame.index
            view.image = image
            view.poses = result.poses.to_dict()
            view.people = len(result.poses)
            view.latency = result.latency
            view.wall_time = result.done_wall_time
            view.arrivals.append(time.monotonic())
        self.metrics.observe(result)

    def close(self) -> None:
        self.ended = True

    # -- the server's side (any thread) ---------------------------------------------------------------
    @property
    def num_sources(self) -> int:
        return len(self._views)

    def frames(self, index: int) -> int:
        """Results received so far for source `index` (changes when a new frame is there)."""
        return self._views[index].frames

    def jpeg(self, index: int) -> tuple[int, bytes | None]:
        """(frame count, JPEG of the newest frame) of source `index`; encodes it if nobody has yet."""
        view = self._views[index]
        with self._lock:
            frames, image, cached = view.frames, view.image, view.jpeg if view.jpeg_frames == view.frames else None
        if cached is not None or image is None:
            return frames, cached
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        data = buffer.tobytes() if ok else None
        with self._lock:
            if view.jpeg_frames < frames:
                view.jpeg, view.jpeg_frames = data, frames
        return frames, data

    def status(self) -> dict[str, Any]:
        """The numbers the page shows: per source and overall."""
        stats = self._stats
        fps = stats.recent_fps() if stats is not None else math.nan
        return {"sources": [self._numbers(i) for i in range(len(self._views))],
                "fps": None if fps != fps else round(fps, 2), "backend": getattr(stats, "backend", ""),
                "ended": self.ended}

    def poses(self) -> dict[str, Any]:
        """The newest poses of every source."""
        with self._lock:
            return {"sources": [{"source": v.source_id, "frame_index": v.frame_index, "time": v.wall_time,
                                 **(v.poses or {"people": []})} for v in self._views]}

    def _numbers(self, index: int) -> dict[str, Any]:
        view = self._views[index]
        status = self._sources[index].status.snapshot() if index < len(self._sources) else {}
        drops = list(getattr(self._stats, "input_drops", []))
        with self._lock:
            fps = view.fps()
            return {"source": view.source_id, "state": status.get("state", "connecting"), "frames": view.frames,
                    "frame_index": view.frame_index, "people": view.people,
                    "fps": None if fps is None else round(fps, 2),
                    "latency_ms": None if view.latency != view.latency else round(view.latency * 1000, 1),
                    "dropped": drops[index] if index < len(drops) else 0,
                    "reconnects": status.get("reconnects", 0), "last_error": status.get("last_error")}
