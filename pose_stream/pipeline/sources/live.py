"""Live sources: cameras and network streams (rtsp://, http(s)://) with timeouts, a stall watchdog and
reconnection. The capture thread reads as fast as the source delivers; the pipeline keeps the newest frame.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2

from pose_stream.errors import PoseStreamError
from pose_stream.pipeline.sources.base import CapturedImage, Source, SourceState, captured
from pose_stream.pipeline.sources.base import DEFAULT_FPS

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
_FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


@dataclass(frozen=True)
class ReconnectPolicy:
    """Capped exponential backoff with jitter between failed connection attempts.

    The first attempt after a lost connection is immediate; after the n-th failure in a row the source waits
    min(max_delay, initial_delay * factor**(n-1)), shortened by up to `jitter` of itself at random (so a
    wall of cameras behind one switch does not reconnect in lockstep).

    Attributes:
        max_attempts: failed connection attempts in a row before the source fails; None retries forever.
    """

    initial_delay: float = 0.1
    max_delay: float = 0.5
    factor: float = 2.0
    jitter: float = 0.5
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < self.initial_delay or self.factor < 1:
            raise ValueError("need 0 <= initial_delay <= max_delay and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None for forever)")

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after `failures` (>= 1) failed attempts in a row."""
        base = min(self.max_delay, self.initial_delay * self.factor ** (failures - 1))
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True)
class LiveOptions:
    """How live sources connect.

    Attributes:
        transport: RTSP transport, "tcp" (default: no packet loss, passes NAT) or "udp".
        timeout: seconds for opening, for one read, and without frames before a source counts as stalled.
        probe_seconds: how long FFmpeg analyses a stream when opening (its default, 5 s, costs about a second
            per reconnect on a 25 fps camera; 0.5 s is enough for H.264/H.265 with regular key frames).
        reconnect: backoff between attempts and how many to make.
    """

    transport: str = "tcp"
    timeout: float = 2.0
    probe_seconds: float = 0.5
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)

    def __post_init__(self) -> None:
        if self.transport not in ("tcp", "udp"):
            raise ValueError(f"RTSP transport must be 'tcp' or 'udp', not {self.transport!r}")
        if self.timeout <= 0 or self.probe_seconds <= 0:
            raise ValueError("timeout and probe_seconds must be positive")

    def ffmpeg_options(self) -> str:
        """The value of OPENCV_FFMPEG_CAPTURE_OPTIONS for this source (key;value pairs joined by |)."""
        return f"rtsp_transport;{self.transport}|analyzeduration;{int(self.probe_seconds * 1e6)}"


class _CaptureOptionsEnv:
    """Serialises changes of OPENCV_FFMPEG_CAPTURE_OPTIONS, which OpenCV reads during open.

    Opens that need the same value run concurrently; an open that needs another value waits until those
    finish. A value the user set in the environment before start is kept as the prefix of ours.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: str | None = None
        self._active = 0
        self._user = os.environ.get(_FFMPEG_OPTIONS_ENV, "")

    @contextmanager
    def holding(self, options: str) -> Iterator[None]:
        value = f"{self._user}|{options}" if self._user else options
        with self._cond:
            while self._active and self._value != value:
                self._cond.wait(0.1)
            os.environ[_FFMPEG_OPTIONS_ENV] = value
            self._value = value
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()


_OPTIONS_ENV = _CaptureOptionsEnv()


class LiveSource(Source):
    """A camera (device index) or a network stream URL.

    States: connecting -> streaming; on a failed read or a read slower than `timeout`: stalled or
    reconnecting -> streaming again; failed after `reconnect.max_attempts` failed attempts in a row;
    ended when the pipeline stops. A camera that never opened fails at once (there is nothing to wait for).
    """

    live = True

    def __init__(self, target: str | int, options: LiveOptions | None = None) -> None:
        self.target = target
        self.options = options or LiveOptions()
        name = f"camera {target}" if isinstance(target, int) else target
        super().__init__(name, stall_timeout=self.options.timeout)
        self._fps: float | None = None
        self._rng = random.Random()

    @property
    def fps(self) -> float | None:
        return self._fps

    def _open(self) -> cv2.VideoCapture:
        if isinstance(self.target, int):
            return cv2.VideoCapture(self.target)
        ms = int(self.options.timeout * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms,
                  # One decoder thread: with several, a frozen stream first returns buffered stale frames.
                  cv2.CAP_PROP_N_THREADS, 1]
        with _OPTIONS_ENV.holding(self.options.ffmpeg_options()):
            return cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)

    def _connect(self, stop: threading.Event) -> cv2.VideoCapture | None:
        """Open the source, retrying with backoff; None when stopped; PoseStreamError when out of attempts."""
        policy = self.options.reconnect
        failures = 0
        while not stop.is_set():
            started = time.monotonic()
            cap = self._open()
            if cap.isOpened():
                fps = cap.get(cv2.CAP_PROP_FPS)
                self._fps = fps if 0 < fps <= 240 else DEFAULT_FPS
                log.info("source %s: opened in %.2f s (%.1f fps)", self.source_id, time.monotonic() - started, self._fps)
                return cap
            cap.release()
            failures += 1
            self.status.last_error = f"connection attempt {failures} failed"
            never_opened_camera = isinstance(self.target, int) and self.status.frames_read == 0
            if never_opened_camera or (policy.max_attempts is not None and failures >= policy.max_attempts):
                what = "open camera" if isinstance(self.target, int) else "connect to"
                raise PoseStreamError(
                    f"cannot {what} {self.source_id} after {failures} attempt{'s' * (failures > 1)}"
                    + (" (no such device, or it is in use)" if never_opened_camera else
                       f" (unreachable, refused, or no answer within {self.options.timeout:g} s)"))
            delay = policy.delay(failures, self._rng)
            self.status.set_state(SourceState.RECONNECTING, f"attempt {failures} failed, retrying in {delay:.2f} s")
            stop.wait(delay)
        return None

    def images(self, stop: threading.Event) -> Iterator[CapturedImage]:
        index = 0
        timeout = self.options.timeout
        while not stop.is_set():
            cap = self._connect(stop)
            if cap is None:
                return
            try:
                self.status.set_state(SourceState.STREAMING)
                while not stop.is_set():
                    started = time.monotonic()
                    ok, image = cap.read()
                    took = time.monotonic() - started
                    if not ok:
                        if took >= 0.9 * timeout:
                            self.status.stalls += 1
                            self.status.set_state(SourceState.STALLED, f"no frame for {took:.1f} s")
                        else:
                            self.status.set_state(SourceState.RECONNECTING, "stream closed")
                        break
                    self.status.frame_read()
                    yield captured(image, index)
                    index += 1
                    if took > timeout:
                        self.status.stalls += 1
                        self.status.set_state(SourceState.STALLED, f"a read took {took:.1f} s")
                        break
            finally:
                # A capture that failed once blocks again on the next read: always start afresh.
                cap.release()
            if not stop.is_set():
                self.status.reconnects += 1
                self.status.set_state(SourceState.RECONNECTING, f"reconnect {self.status.reconnects}")
