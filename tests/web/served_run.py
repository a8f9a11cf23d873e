"""A pipeline feeding a LiveView, served by a real WebServer on a free port (ServedRun)."""
from __future__ import annotations

import threading

from pose_stream.pipeline import GeneratedSource, Pipeline, PipelineConfig
from pose_stream.tracking import TrackingConfig
from pose_stream.web import LiveView, WebServer
from tracking_people import WalkerEstimator, numbered_frames


class ServedRun:
    """`sources` paced sources of walkers (10 fps) through a pipeline into a LiveView on http://127.0.0.1:PORT/."""

    def __init__(self, sources: int = 2, fps: float = 10.0, frames: int = 100000) -> None:
        self.sources = [GeneratedSource(frames, (320, 180), source_id=f"cam{i}", fps=fps, frames=numbered_frames,
                                        paced=True) for i in range(sources)]
        self.view = LiveView(self.sources)
        self.pipeline = Pipeline(WalkerEstimator(), self.sources, [self.view],
                                 PipelineConfig(tracking=TrackingConfig()))
        self.server = WebServer(self.view, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self.pipeline.run, name="test-pipeline")

    def __enter__(self) -> "ServedRun":
        self.server.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.pipeline.stop()
        self._thread.join(30)
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url
