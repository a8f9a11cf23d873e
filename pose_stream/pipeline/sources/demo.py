"""The `demo` source: a generated clip, so `pose-stream --source demo` runs with no camera and no files."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from pose_stream.pipeline.sources.base import CapturedImage, Source, SourceState, captured

DEMO_FPS = 25.0
DEMO_FRAMES = 250  # ten seconds
DEMO_SIZE = (640, 360)


def demo_frames(num_frames: int = DEMO_FRAMES, size: tuple[int, int] = DEMO_SIZE, seed: int = 0) -> Iterator[np.ndarray]:
    """The frames of the demo: uint8 BGR (H, W, 3) images of the animated synthetic scene (people walking,
    turning, entering and leaving), `num_frames` of them; `seed` picks another scene (0: the demo clip)."""
    from pose_stream.synthetic.animation import demo_frames as animated

    width, height = size
    for frame in animated(width=width, height=height, fps=DEMO_FPS, seed=seed, num_frames=num_frames):
        yield frame.image


def seeded_demo(seed: int) -> "FrameFactory":
    """The demo's frame factory for another seed of the animated scene."""
    return lambda num_frames, size: demo_frames(num_frames, size, seed)


def pattern_frames(num_frames: int = DEMO_FRAMES, size: tuple[int, int] = DEMO_SIZE) -> Iterator[np.ndarray]:
    """A cheap moving test pattern (no people): for soak tests and throughput runs, where rendering the
    synthetic scene would cost more than what is being measured."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    for t in range(num_frames):
        yield np.stack([(xx + 3 * t) % 256, (yy + t) % 256, np.full_like(xx, t % 256)], axis=-1).astype(np.uint8)


FrameFactory = Callable[[int, tuple[int, int]], Iterator[np.ndarray]]


class GeneratedSource(Source):
    """A finite clip produced in memory (the demo, benchmarks).

    Unpaced (the default) it is a file: frames as fast as they are taken, every one processed, in order.
    `paced` makes it a camera: frame i is delivered at start + i / fps (sleeping until then, never catching up
    by bursts), and the pipeline keeps only the newest frame, dropping and counting the ones inference was too
    slow for (`live` is True).
    """

    def __init__(self, num_frames: int = DEMO_FRAMES, size: tuple[int, int] = DEMO_SIZE,
                 source_id: str = "demo", fps: float = DEMO_FPS, frames: FrameFactory = demo_frames,
                 paced: bool = False) -> None:
        super().__init__(source_id)
        if paced and not fps > 0:
            raise ValueError("a paced source needs a positive frame rate")
        self._frames = frames
        self.num_frames = num_frames
        self.size = size
        self._fps = fps
        self.paced = paced
        self.live = paced

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def expected_frames(self) -> int | None:
        return self.num_frames

    def images(self, stop: threading.Event) -> Iterator[CapturedImage]:
        self.status.set_state(SourceState.STREAMING)
        frames = self._frames(self.num_frames, self.size)
        start = time.monotonic()
        try:
            for index, image in enumerate(frames):
                if self.paced:
                    stop.wait(max(0.0, start + index / self._fps - time.monotonic()))
                if stop.is_set():
                    return
                self.status.frame_read()
                yield captured(image, index)
        finally:
            close = getattr(frames, "close", None)  # a generator holds its clip until closed; a plain iterator has none
            if close is not None:
                close()
