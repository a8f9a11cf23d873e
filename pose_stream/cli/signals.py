"""Ctrl-C and SIGTERM for the command line: a request to stop, never a crash, at any moment of a command.

The `pose-stream` program installs `STOP_SIGNALS` before anything else and keeps it until the process has
exited, so no signal finds Python's default handlers (an uncaught KeyboardInterrupt, or death by SIGTERM with
outputs half done). What a signal does depends on who listens at that moment:
- nobody (most subcommands): it is raised as KeyboardInterrupt, the usual Ctrl-C (exit status 130);
- a listener (`pose-stream run`): it is told how many signals came so far and decides (stop, then abandon);
- after the command has finished (`finished()`): nothing, the process is on its way out.
Handlers run in the main thread between bytecodes; they only set flags and write with os.write.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """The process's SIGINT/SIGTERM handler. `received` counts the signals since the listener was set."""

    def __init__(self) -> None:
        self.received = 0
        self._listener: Callable[[int], None] | None = None
        self._finished = False
        self._installed: dict[int, Any] | None = None

    def install(self) -> None:
        """Take over SIGINT and SIGTERM (main thread only; a no-op elsewhere or when already installed)."""
        if self._installed is None and threading.current_thread() is threading.main_thread():
            self._installed = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}

    def uninstall(self) -> None:
        if self._installed is not None:
            for sig, previous in self._installed.items():
                signal.signal(sig, previous)
            self._installed = None

    def finished(self) -> None:
        """The command is done: later signals are ignored while the process exits."""
        self._finished = True
        self._listener = None

    @contextmanager
    def listening(self, listener: Callable[[int], None]) -> Iterator["StopSignals"]:
        """Send signals to `listener(count)` inside the block (installing the handler for the block when the
        program has not: in-process callers such as tests get their own handlers back afterwards)."""
        owner = self._installed is None
        self.install()
        previous, self._listener, self.received = self._listener, listener, 0
        try:
            yield self
        finally:
            self._listener = previous
            if owner:
                self.uninstall()

    def _handle(self, signum: int, frame: Any) -> None:
        if self._finished:
            return
        self.received += 1
        if self._listener is not None:
            self._listener(self.received)
            return
        raise KeyboardInterrupt


STOP_SIGNALS = StopSignals()
