"""Links between pipeline threads. Every blocking call waits in short slices and watches an abort event,
so no thread can hang on a queue whose other end is gone.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from pose_stream.pipeline.frames import Frame

POLL_SECONDS = 0.05


class _EndOfStream:
    def __repr__(self) -> str:
        return "END"


END: Any = _EndOfStream()
"""The marker every producer sends downstream, in a `finally`, when it has nothing more."""


class Aborted(Exception):
    """The pipeline is shutting down without draining; the thread should return."""


@dataclass
class QueueStats:
    """Capacity, deepest fill seen, and frames dropped, for one link."""

    name: str
    capacity: int
    max_depth: int = 0
    drops: int = 0


class StageQueue:
    """A bounded FIFO between two stage threads (producers wait when it is full: no frame is lost)."""

    def __init__(self, name: str, capacity: int, abort: threading.Event) -> None:
        if capacity < 1:
            raise ValueError("queue capacity must be at least 1")
        self._queue: queue.Queue = queue.Queue(capacity)
        self._abort = abort
        self.stats = QueueStats(name, capacity)

    def put(self, item: Any) -> None:
        """Wait for room; raise Aborted if the pipeline aborts meanwhile."""
        while True:
            if self._abort.is_set():
                raise Aborted
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
            except queue.Full:
                continue
            self.stats.max_depth = max(self.stats.max_depth, self._queue.qsize())
            return

    def get(self) -> Any:
        """Wait for an item; raise Aborted if the pipeline aborts meanwhile."""
        while True:
            if self._abort.is_set():
                raise Aborted
            try:
                return self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue

    def poll(self, timeout: float) -> Any:
        """One wait of at most `timeout` seconds, ignoring abort; None when nothing came."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


class FrameMux:
    """The capture threads' outlet and the inference thread's inlet: one buffer per source, read round-robin.

    Live sources have one slot and the newest frame wins: a frame replaced before inference took it is
    dropped and counted (so latency stays bounded when inference is slower than the camera). File sources
    have `depth` slots and their capture thread waits for room: every frame is processed, in order.

    `get` returns END once every source has ended, once `stop` is set and the buffers are empty (what was
    captured is still processed), or after `limit` frames; it raises Aborted when `abort` is set.
    """

    def __init__(self, live: list[bool], depth: int, stop: threading.Event, abort: threading.Event,
                 limit: int | None = None) -> None:
        if depth < 1:
            raise ValueError("buffer depth must be at least 1")
        self._live = list(live)
        self._depth = depth
        self._stop = stop
        self._abort = abort
        self._limit = limit
        self._cond = threading.Condition()
        self._buffers: list[deque[Frame]] = [deque() for _ in live]
        self._ended = [False] * len(live)
        self._next = 0
        self.delivered = 0
        self.drops = [0] * len(live)
        self.max_depth = [0] * len(live)

    def put(self, source: int, frame: Frame) -> bool:
        """Hand over a frame; False when the pipeline is stopping and the source should end."""
        with self._cond:
            buffer = self._buffers[source]
            if self._stop.is_set() or self._abort.is_set():
                return False
            if self._live[source]:
                if buffer:
                    buffer.popleft()
                    self.drops[source] += 1
            else:
                while len(buffer) >= self._depth:
                    if self._stop.is_set() or self._abort.is_set():
                        return False
                    self._cond.wait(POLL_SECONDS)
            if self._stop.is_set() or self._abort.is_set():
                return False
            buffer.append(frame)
            self.max_depth[source] = max(self.max_depth[source], len(buffer))
            self._cond.notify_all()
            return True

    def end(self, source: int) -> None:
        """The source's end marker (its capture thread sends it in a `finally`)."""
        with self._cond:
            self._ended[source] = True
            self._cond.notify_all()

    def wake(self) -> None:
        """Make waiting threads re-check stop/abort now."""
        with self._cond:
            self._cond.notify_all()

    def get_batch(self, size: int, wait: float) -> list[Frame] | Any:
        """Up to `size` frames, round robin across sources (one per source per round, so no camera starves):
        as soon as `size` are waiting, or `wait` seconds after the oldest of them was captured, or when the
        sources have ended or stop is set (what was captured is still returned). END when nothing is left;
        Aborted when `abort` is set. With size 1 this is `get`."""
        batch: list[Frame] = []
        deadline = None
        with self._cond:
            while True:
                if self._abort.is_set():
                    raise Aborted
                while len(batch) < size and self._take_round(batch, size):
                    pass
                if batch and deadline is None:
                    # `wait` counts from when the oldest frame of the batch was captured: a pipeline that is
                    # behind does not wait at all.
                    deadline = min(f.captured_at for f in batch) + wait
                finished = all(self._ended) or self._stop.is_set() or (
                    self._limit is not None and self.delivered >= self._limit)
                if len(batch) >= size or (batch and (finished or time.monotonic() >= deadline)):
                    return batch
                if finished:
                    if self._limit is not None and self.delivered >= self._limit:
                        self._stop.set()
                        self._cond.notify_all()
                    return END
                timeout = POLL_SECONDS if deadline is None else min(POLL_SECONDS, max(0.0, deadline - time.monotonic()))
                self._cond.wait(timeout)

    def _take_round(self, batch: list[Frame], size: int) -> bool:
        """One round robin pass over the sources, appending to `batch`; False when no source had a frame."""
        took = False
        count = len(self._buffers)
        start = self._next
        for k in range(count):
            if len(batch) >= size or (self._limit is not None and self.delivered >= self._limit):
                break
            i = (start + k) % count
            if self._buffers[i]:
                batch.append(self._buffers[i].popleft())
                self._next = (i + 1) % count
                self.delivered += 1
                took = True
        if took:
            self._cond.notify_all()
        return took

    def get(self) -> Frame | Any:
        with self._cond:
            while True:
                if self._abort.is_set():
                    raise Aborted
                if self._limit is not None and self.delivered >= self._limit:
                    self._stop.set()
                    self._cond.notify_all()
                    return END
                count = len(self._buffers)
                for k in range(count):
                    i = (self._next + k) % count
                    if self._buffers[i]:
                        frame = self._buffers[i].popleft()
                        self._next = (i + 1) % count
                        self.delivered += 1
                        self._cond.notify_all()
                        return frame
                if all(self._ended) or self._stop.is_set():
                    return END
                self._cond.wait(POLL_SECONDS)
