"""What every frame source shares: states, live status, the frame record."""
from __future__ import annotations

import abc
import enum
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_stream.redact import mask_credentials, mask_url

log = logging.getLogger(__name__)


class SourceState(str, enum.Enum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    STALLED = "stalled"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"


@dataclass(frozen=True)
class CapturedImage:
    """One decoded image as a source yields it, before the pipeline numbers it.

    Attributes:
        image: uint8 BGR (H, W, 3).
        index: position in the source: frame number in a video/stream (counting frames the pipeline
            later drops), image number in a folder.
        captured_at: time.monotonic() when the image was read (latency is measured from here).
        wall_time: time.time() at the same moment (for output files).
        name: file name for image sources (COCO image ids come from it), else "".
    """

    image: np.ndarray
    index: int
    captured_at: float
    wall_time: float
    name: str = ""


class SourceStatus:
    """State and counters of one source; written by its capture thread, read by anyone.

    `state` doubles as the stall watchdog's report: a streaming source that has not delivered a frame for
    `stall_timeout` seconds reads as STALLED even while its capture thread is still blocked in a read.
    """

    def __init__(self, source_id: str, stall_timeout: float | None = None) -> None:
        self.source_id = source_id
        self.stall_timeout = stall_timeout
        self._lock = threading.Lock()
        self._state = SourceState.CONNECTING
        self.frames_read = 0
        self.skipped = 0  # unreadable inputs passed over (corrupt images in a folder)
        self.reconnects = 0
        self.stalls = 0
        self.last_frame_at: float | None = None
        self.last_error = ""
        self.history: list[tuple[float, SourceState]] = [(time.monotonic(), SourceState.CONNECTING)]

    @property
    def state(self) -> SourceState:
        with self._lock:
            state, last = self._state, self.last_frame_at
        if (state is SourceState.STREAMING and self.stall_timeout is not None and last is not None
                and time.monotonic() - last > self.stall_timeout):
            return SourceState.STALLED
        return state

    def set_state(self, state: SourceState, reason: str = "") -> None:
        with self._lock:
            old, self._state = self._state, state
            if state is SourceState.STREAMING:
                self.last_frame_at = time.monotonic()  # the watchdog counts from (re)connection
            if old is not state:
                self.history.append((time.monotonic(), state))
                if len(self.history) > 1000:  # bounded: a flapping camera must not grow memory
                    del self.history[: len(self.history) - 1000]
        if old is not state:
            # Losing and regaining a stream are warnings (shown by default); FAILED is not: the error it causes
            # ends the run and is reported once, by the caller.
            trouble = (SourceState.STALLED, SourceState.RECONNECTING)
            level = logging.WARNING if state in trouble or (old in trouble and state is SourceState.STREAMING) \
                else logging.INFO
            log.log(level, "source %s: %s -> %s%s", self.source_id, old.value, state.value,
                    f" ({mask_credentials(reason)})" if reason else "")

    def frame_read(self) -> None:
        with self._lock:
            self.frames_read += 1
            self.last_frame_at = time.monotonic()

    def snapshot(self) -> dict:
        return {
            "source": self.source_id, "state": self.state.value, "frames_read": self.frames_read,
            "skipped": self.skipped, "reconnects": self.reconnects, "stalls": self.stalls, "last_error": self.last_error,
        }


DEFAULT_FPS = 25.0  # assumed when a video or stream does not say its frame rate


class Source(abc.ABC):
    """A stream of images. `images(stop)` is a generator that releases what it opened in `finally`.

    Attributes:
        source_id: display name (credentials masked), used in logs, stats and output files.
        live: True for cameras and streams (the pipeline keeps only the newest frame); False for files,
            folders and generated clips (every frame is processed, in order).
        video: True when consecutive frames show one scene over time (people are tracked from frame to frame);
            False for image files, which are unrelated pictures.
        status: state and counters.
    """

    source_id: str
    live: bool = False
    video: bool = True

    def __init__(self, source_id: str, stall_timeout: float | None = None) -> None:
        self.source_id = mask_url(source_id)
        self.status = SourceStatus(self.source_id, stall_timeout)

    @property
    def fps(self) -> float | None:
        """Frame rate, when the source knows it (after it has opened for videos and streams)."""
        return None

    @property
    def expected_frames(self) -> int | None:
        """How many frames the source will yield, when known (for progress bars)."""
        return None

    @property
    def input_paths(self) -> tuple[Path, ...]:
        """The files this source reads (outputs must never be one of them)."""
        return ()

    def check(self) -> None:
        """Fail fast (PoseStreamError) when the source cannot work at all; cheap, and releases what it opens."""

    @abc.abstractmethod
    def images(self, stop: threading.Event) -> Iterator[CapturedImage]:
        """Yield images until the source ends or `stop` is set; release everything in `finally`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source_id!r})"


def captured(image: np.ndarray, index: int, name: str = "") -> CapturedImage:
    return CapturedImage(image=image, index=index, captured_at=time.monotonic(), wall_time=time.time(), name=name)
