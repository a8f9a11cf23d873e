"""Writing files so that a crash, a kill or a failed run never leaves half a file under the final name.

Two ways, one rule (write beside the target, rename onto it only when complete):
- `atomic_path(target)`: a one-shot write (checkpoints, ONNX models, engines, JSON reports). The temporary
  name is unique, so two processes writing the same target do not meet; it is removed when the write fails.
- `PartialFile(target)`: an output that grows during a run (JSON lines, a video). It is written as
  `NAME.partial.EXT` (a fixed name a user can follow with `tail -f`) and `commit()`ed to `NAME.EXT` when the
  run ends; a failed run `keep()`s it under the partial name, so an older `NAME.EXT` is never replaced.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def partial_path(target: str | os.PathLike) -> Path:
    """Where `PartialFile` writes `target` while a run is going: `poses.jsonl` -> `poses.partial.jsonl`.

    The extension stays last, because writers such as OpenCV's choose the container from it.
    """
    target = Path(target)
    return target.with_name(f"{target.stem}.partial{target.suffix}")


@contextmanager
def atomic_path(target: str | os.PathLike, fsync: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary path beside `target` (same extension) to write to; when the block ends without
    an exception it is renamed onto `target`, otherwise it is deleted. The folder is created if needed.

    fsync: flush the file to disk before the rename (for files that must survive a power cut).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(target: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """`target` holds `data` afterwards, or (on any failure) what it held before."""
    with atomic_path(target, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    """`target` holds `text` (UTF-8) afterwards, or (on any failure) what it held before."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


class PartialFile:
    """One output of a run: written at `partial`, renamed onto `target` by `commit()`.

    Attributes:
        target: the final name the user asked for.
        partial: where it is written meanwhile (`partial_path(target)`).
        state: "open" until `commit()` ("written") or `keep()` ("kept", or "empty" when nothing was written
            and the partial file was removed instead).
    """

    def __init__(self, target: str | os.PathLike) -> None:
        self.target = Path(target)
        self.partial = partial_path(self.target)
        self.state = "open"

    def commit(self) -> None:
        """The run ended (completed or stopped on request): the output becomes `target`."""
        if self.partial.exists():
            os.replace(self.partial, self.target)
            self.state = "written"
        else:
            self.state = "empty"

    def keep(self) -> None:
        """The run failed: leave what was written under the partial name (an existing `target` stays as it is);
        remove the partial file if it holds nothing."""
        if self.partial.exists() and self.partial.stat().st_size == 0:
            self.partial.unlink()
        self.state = "kept" if self.partial.exists() else "empty"
        if self.state == "kept":
            log.warning("the run failed: its partial output is kept in %s", self.partial)

    def finish(self, success: bool) -> None:
        """`commit()` after a run that ended well, `keep()` after one that failed; once."""
        if self.state == "open":
            self.commit() if success else self.keep()
