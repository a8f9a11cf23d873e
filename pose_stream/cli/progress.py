"""The progress of `pose-stream run` on standard error: a bar on a terminal, status lines otherwise."""
from __future__ import annotations

import sys
import time
from typing import Any

from pose_stream.pipeline.sinks import Sink


class ProgressSink(Sink):
    """Progress on stderr: a bar when it is a terminal; otherwise (a log, a service, a pipe) a status line every
    `QUIET_INTERVAL` seconds, so that a long run is never silent; with --stats a status line every `INTERVAL`."""

    INTERVAL = 2.0
    QUIET_INTERVAL = 5.0

    def __init__(self, total: int | None, live_stats: bool) -> None:
        self._total = total
        self._interval = self.INTERVAL if live_stats else None if sys.stderr.isatty() else self.QUIET_INTERVAL
        self._bar: Any = None
        self._done = 0  # a disabled bar does not count
        self._next_line = time.monotonic() + (self._interval or 0.0)
        self.pipeline: Any = None

    def start(self, context: Any) -> None:
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (logs, CI, tests).
        self._bar = tqdm(total=self._total, unit="frame", disable=None, dynamic_ncols=True, leave=False)

    def write(self, result: Any) -> None:
        self._bar.update(1)
        self._done += 1
        now = time.monotonic()
        if self._interval is not None and now >= self._next_line and self.pipeline is not None:
            self._next_line = now + self._interval
            first = self.pipeline.refresh_stats().format_summary().splitlines()[0]
            done = f"{self._done}/{self._total} frames; " if self._total else ""
            self._bar.write(f"pose-stream: {done}{first}", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
