"""Checking output paths before a run opens anything or loads a model: nothing a user owns is destroyed.

Every file a file sink will write (and its `.partial` name) must lie in an existing folder, must not be an
input (a source video or image, a model file) nor another output, and must not exist unless its sink was
given `overwrite`. An input is never overwritten, `overwrite` or not.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from pose_stream.atomic import partial_path
from pose_stream.errors import PoseStreamError
from pose_stream.pipeline.sinks import CocoResultsSink, FileSink, Sink
from pose_stream.pipeline.sources import Source


def check_outputs(sinks: Sequence[Sink], sources: Sequence[Source], other_inputs: Iterable[str | Path] = ()) -> None:
    """Raise PoseStreamError (one line, naming the option and the file) for the first output that could
    destroy something or cannot be written.

    Args:
        sinks: the run's sinks; those that are FileSinks are checked.
        sources: the run's sources (their `input_paths` are inputs).
        other_inputs: more files the run reads (model files).
    """
    inputs = [Path(p) for source in sources for p in source.input_paths]
    inputs += [Path(p) for p in other_inputs if p]
    input_keys = {_key(p): p for p in inputs}
    planned: dict[str, str] = {}  # path key -> the option that writes it
    for sink in sinks:
        if isinstance(sink, CocoResultsSink):
            CocoResultsSink.check_sources(sources)
        if not isinstance(sink, FileSink):
            continue
        for path in sink.planned_paths(len(sources)):
            for written in (path, partial_path(path)):
                _check_one(sink, path, written, input_keys, planned)


def _check_one(sink: FileSink, path: Path, written: Path, inputs: dict[str, Path], planned: dict[str, str]) -> None:
    option = sink.option
    what = f"{option} {path}" if written == path else f"{option} {path} (written as {written.name} meanwhile)"
    _check_folder(what, written.parent)
    key = _key(written)
    same_input = inputs.get(key) or next((p for p in inputs.values() if _same_file(p, written)), None)
    if same_input is not None:
        raise PoseStreamError(f"{what} is also an input ({same_input}): refusing to overwrite it; choose another "
                              "output name")
    if key in planned:
        raise PoseStreamError(f"{option} and {planned[key]} would both write {written}; give them different names")
    planned[key] = option
    if written.is_dir():
        raise PoseStreamError(f"{what} is a folder; give a file name")
    if written.exists() and not sink.overwrite:
        if written == path:
            raise PoseStreamError(f"{option} {path} already exists: pass --overwrite to replace it, or choose "
                                  "another name")
        raise PoseStreamError(f"{written} exists (the partial output of an earlier run that did not finish?): "
                              f"move it away, or pass --overwrite to replace it")


def _check_folder(what: str, folder: Path) -> None:
    folder = folder if str(folder) else Path(".")
    if folder.is_dir():
        return
    for parent in (folder, *folder.parents):
        if parent.exists() and not parent.is_dir():
            raise PoseStreamError(f"cannot write {what}: {parent} is a file, not a folder")
    raise PoseStreamError(f"cannot write {what}: folder {folder} does not exist")


def _key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _same_file(a: Path, b: Path) -> bool:
    """True when both exist and are one file (hard links, or the same file through another path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
