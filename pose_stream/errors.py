"""Errors the command line turns into one readable line (no traceback)."""
from __future__ import annotations


class PoseStreamError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class MissingExtraError(PoseStreamError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed: "
            f"pip install 'pose-stream[{extra}]'"
        )
        self.package = package
        self.extra = extra


class BackendUnavailable(PoseStreamError):
    """The backend cannot be reached now (a remote server that went away): the call's frames are dropped, and
    later calls try again. The pipeline counts them and goes on reading its sources."""
