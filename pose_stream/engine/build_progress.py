"""Progress bars for TensorRT engine builds, fed by TensorRT's progress monitor.

TensorRT reports nested phases ("Building engine" > "Tactic selection" > ...), each with a number of
steps, from its own threads. `BuildProgress` keeps one tqdm bar per active phase, indented by depth;
`make_progress_monitor` wraps it in the `trt.IProgressMonitor` subclass that TensorRT calls.
"""
from __future__ import annotations

import logging
import sys
import threading
from types import ModuleType
from typing import IO

from tqdm import tqdm

log = logging.getLogger(__name__)


class BuildProgress:
    """Phase/step events -> tqdm bars. Thread-safe; `cancel()` makes the next step ask TensorRT to stop."""

    def __init__(self, enabled: bool = True, file: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.file = file if file is not None else sys.stderr
        self._bars: dict[str, tuple[tqdm, int]] = {}
        self._lock = threading.Lock()
        self.cancelled = False
        self.phases_seen: list[str] = []

    def phase_start(self, phase: str, parent: str | None, num_steps: int) -> None:
        with self._lock:
            depth = self._bars[parent][1] + 1 if parent in self._bars else 0
            bar = tqdm(total=max(int(num_steps), 1), desc=("  " * depth) + phase, position=depth,
                       leave=depth == 0, disable=not self.enabled, file=self.file, dynamic_ncols=True)
            self._bars[phase] = (bar, depth)
            self.phases_seen.append(phase)

    def step_complete(self, phase: str, step: int) -> bool:
        """Steps are numbered from 0; returns False to ask TensorRT to cancel the build."""
        with self._lock:
            entry = self._bars.get(phase)
            if entry is not None:
                bar = entry[0]
                bar.update(max(0, min(step + 1, bar.total) - bar.n))
        return not self.cancelled

    def phase_finish(self, phase: str) -> None:
        with self._lock:
            entry = self._bars.pop(phase, None)
        if entry is not None:
            entry[0].close()

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        with self._lock:
            bars = [bar for bar, _ in self._bars.values()]
            self._bars.clear()
        for bar in bars:
            bar.close()


def make_progress_monitor(trt: ModuleType, progress: BuildProgress):
    """A `trt.IProgressMonitor` forwarding to `progress`. Keep it referenced until the build ends.

    Exceptions must not cross back into TensorRT's threads: they are logged, and an interrupt
    (Ctrl-C arriving in a callback) cancels the build instead.
    """

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            try:
                progress.phase_start(phase_name, parent_phase, num_steps)
            except KeyboardInterrupt:
                progress.cancel()
            except Exception:  # noqa: BLE001 - never raise into TensorRT; the bar is cosmetic
                log.exception("progress bar failed in phase_start(%s)", phase_name)

        def step_complete(self, phase_name, step):
            try:
                return progress.step_complete(phase_name, step)
            except KeyboardInterrupt:
                progress.cancel()
                return False
            except Exception:  # noqa: BLE001
                log.exception("progress bar failed in step_complete(%s)", phase_name)
                return not progress.cancelled

        def phase_finish(self, phase_name):
            try:
                progress.phase_finish(phase_name)
            except KeyboardInterrupt:
                progress.cancel()
            except Exception:  # noqa: BLE001
                log.exception("progress bar failed in phase_finish(%s)", phase_name)

    return _Monitor()
