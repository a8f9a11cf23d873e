"""The `demo` source: a generated clip, so `pose-stream --source demo` runs with no camera and no files."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import cv2
import numpy as np

from pose_stream.pipeline.sources.base import CapturedImage, Source, SourceState, captured

DEMO_FPS = 25.0
DEMO_FRAMES = 250  # ten seconds


def demo_frames(num_frames: int = DEMO_FRAMES, size: tuple[int, int] = (640, 480)) -> Iterator[np.ndarray]:
    """The frames of the demo: uint8 BGR (H, W, 3) images, `num_frames` of them.

    The one hook for the demo: for now stick figures walking across a gradient; the synthetic multi-person
    scene (demo issue) replaces the body of this function.
    """
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([(xx * 255 // max(width - 1, 1)), (yy * 255 // max(height - 1, 1)),
                           np.full_like(xx, 96)], axis=-1).astype(np.uint8)
    for t in range(num_frames):
        frame = background.copy()
        for person in range(3):
            cx = int((width * (0.2 + 0.3 * person) + 4 * t * (1 if person % 2 else -1)) % width)
            cy = int(height * 0.55)
            _stick_figure(frame, cx, cy, scale=height / 6, phase=t / 6 + person)
        yield frame


def _stick_figure(frame: np.ndarray, cx: int, cy: int, scale: float, phase: float) -> None:
    swing = 0.5 * np.sin(phase)
    head = (cx, int(cy - 1.6 * scale))
    neck, hip = (cx, int(cy - 1.2 * scale)), (cx, int(cy))
    points = [
        (neck, hip),
        (neck, (int(cx + scale * np.sin(swing)), int(cy - 0.4 * scale))),
        (neck, (int(cx - scale * np.sin(swing)), int(cy - 0.4 * scale))),
        (hip, (int(cx + scale * np.sin(swing)), int(cy + scale))),
        (hip, (int(cx - scale * np.sin(swing)), int(cy + scale))),
    ]
    for a, b in points:
        cv2.line(frame, a, b, (40, 40, 40), max(2, int(scale / 8)), cv2.LINE_AA)
    cv2.circle(frame, head, max(3, int(scale / 3)), (40, 40, 40), -1, cv2.LINE_AA)


class GeneratedSource(Source):
    """A finite clip produced in memory (the demo, benchmarks); every frame is processed, in order."""

    live = False

    def __init__(self, num_frames: int = DEMO_FRAMES, size: tuple[int, int] = (640, 480),
                 source_id: str = "demo", fps: float = DEMO_FPS) -> None:
        super().__init__(source_id)
        self.num_frames = num_frames
        self.size = size
        self._fps = fps

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def expected_frames(self) -> int | None:
        return self.num_frames

    def images(self, stop: threading.Event) -> Iterator[CapturedImage]:
        self.status.set_state(SourceState.STREAMING)
        frames = demo_frames(self.num_frames, self.size)
        try:
            for index, image in enumerate(frames):
                if stop.is_set():
                    return
                self.status.frame_read()
                yield captured(image, index)
        finally:
            frames.close()
