"""Where results go: a window, an annotated video, JSON lines, COCO keypoint results.

Sinks run in the pipeline's output stage (the caller's thread, which is what GUI toolkits want). `start` is
called before the first frame, `write` once per frame, `close` always (files are finalised there).

File sinks write each output as `NAME.partial.EXT` (`pose_stream.atomic.PartialFile`) and rename it to `NAME.EXT`
in `close` when the run ended well (completed, or stopped on request); after a failure the partial file is
kept and an existing `NAME.EXT` is left as it was. Their paths are checked before the run
(`pose_stream.pipeline.outputs.check_outputs`).
"""
from __future__ import annotations

import abc
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2

from pose_stream.atomic import PartialFile
from pose_stream.errors import PoseStreamError
from pose_stream.pipeline.frames import FrameResult
from pose_stream.pipeline.render import gui_available
from pose_stream.pipeline.sources import ImageSequenceSource, Source
from pose_stream.pipeline.sources.base import DEFAULT_FPS

log = logging.getLogger(__name__)

HEADLESS_HINT = ("this OpenCV build has no GUI support (the headless wheel): install the full build with "
                 "pip uninstall -y opencv-python-headless && pip install 'opencv-python>=4.10,<5'")


@dataclass(frozen=True)
class SinkContext:
    """What sinks may know about the run: its sources, how to ask it to stop (drain and finish), (in `close`)
    whether it ended well: completed or stopped on request, not failed; and its live statistics (PipelineStats,
    refreshed by the output stage about twice a second; read-only for sinks)."""

    sources: Sequence[Source]
    request_stop: Callable[[], None]
    succeeded: Callable[[], bool] = lambda: True
    stats: Any = None


class Sink(abc.ABC):
    needs_render = False  # True when write() uses result.annotated

    def start(self, context: SinkContext) -> None:
        """Called once before the first frame."""

    @abc.abstractmethod
    def write(self, result: FrameResult) -> None:
        """Consume one finished frame."""

    def close(self) -> None:
        """Finish and release; must be safe to call more than once and after a failed start."""


def _open_for_writing(path: Path) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise PoseStreamError(f"cannot write {path}: {exc.strerror or exc}") from None


class FileSink(Sink):
    """A sink that writes files: its option name (for messages), the extensions it knows, `--overwrite`, and
    the PartialFile of each output.

    Attributes:
        path: the output the user named.
        overwrite: replace an existing output (otherwise check_outputs refuses it).
        outputs: one PartialFile per file written so far; after `close`, each says whether it was written.
    """

    option = "output"
    extensions: tuple[str, ...] = ()

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.outputs: list[PartialFile] = []
        self._succeeded: Callable[[], bool] = lambda: True
        if self.to_stdout:
            return
        if self.path.suffix.lower() not in self.extensions:
            found = f"'{self.path.suffix}'" if self.path.suffix else "none"
            raise PoseStreamError(f"{self.option} {self.path}: unknown file extension ({found}); use one of "
                                  f"{', '.join(self.extensions)}")

    @property
    def to_stdout(self) -> bool:
        """`-` as the path: standard output (only sinks that can stream accept it)."""
        return str(self.path) == "-" and self.streams

    streams = False  # True for sinks that can write to standard output

    def planned_paths(self, num_sources: int) -> list[Path]:
        """Every file this sink will write for a run with `num_sources` sources."""
        return [] if self.to_stdout else [self.path]

    def start(self, context: SinkContext) -> None:
        self._succeeded = context.succeeded

    def _finish(self, success: bool) -> None:
        for output in self.outputs:
            output.finish(success)

    @property
    def written(self) -> list[Path]:
        """The outputs that exist under their final names after `close`."""
        return [o.target for o in self.outputs if o.state == "written"]

    @property
    def kept(self) -> list[Path]:
        """The partial outputs a failed run left (an older file of the final name is untouched)."""
        return [o.partial for o in self.outputs if o.state == "kept"]


class JsonLinesSink(FileSink):
    """One JSON object per frame, flushed at once (a reader can follow `NAME.partial.jsonl` live; a kill loses
    nothing that was written). The path `-` writes to standard output (for `| jq`); a reader that goes away
    (a broken pipe) stops the run.

    Line: {"source", "source_index", "frame_index", "seq", "image", "timestamps": {"captured", "done",
    "latency_ms"}, "source_state", "joint_set", "people": [{"score", "keypoints": [[x, y, value], ...]}]}.
    """

    option = "--json"
    extensions = (".jsonl", ".ndjson", ".json")
    streams = True

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        super().__init__(path, overwrite)
        self._file: IO[str] | None = None
        self._request_stop: Callable[[], None] = lambda: None

    def start(self, context: SinkContext) -> None:
        super().start(context)
        self._request_stop = context.request_stop
        if self.to_stdout:
            self._file = sys.stdout
            return
        output = PartialFile(self.path)
        self._file = _open_for_writing(output.partial)
        self.outputs = [output]

    def write(self, result: FrameResult) -> None:
        frame = result.frame
        record: dict[str, Any] = {
            "source": frame.source_id,
            "source_index": frame.source_index,
            "frame_index": frame.index,
            "seq": frame.seq,
            "image": frame.name or None,
            "timestamps": {
                "captured": round(frame.wall_time, 6),
                "done": round(result.done_wall_time, 6),
                "latency_ms": round(result.latency * 1000.0, 3),
            },
            "source_state": result.source_state,
            **result.poses.to_dict(),
        }
        if self._file is None:
            return  # closed: standard output's reader went away
        try:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._file.flush()
        except BrokenPipeError:
            log.warning("the reader of the JSON lines has gone: stopping")
            self._file = None
            self._request_stop()

    def close(self) -> None:
        if self.to_stdout:
            self._file = None
            return
        if self._file is not None:
            self._file.close()
            self._file = None
            self._finish(self._succeeded())


def per_source_path(path: Path, source_index: int, num_sources: int) -> Path:
    """`out.mp4` for one source; `out_0.mp4`, `out_1.mp4`, ... for several."""
    return path if num_sources == 1 else path.with_name(f"{path.stem}_{source_index}{path.suffix}")


class VideoSink(FileSink):
    """Annotated frames as an MP4 (mp4v, what OpenCV's wheels can encode) at the source's frame rate.

    The writer opens on a source's first frame (size and rate are known then) and is finalised in close();
    a source that produced no frame writes no file. Frames a live source dropped are filled by repeating the
    previous result, so the video plays in real time.
    """

    needs_render = True
    option = "--save"
    extensions = (".mp4", ".m4v", ".mov", ".avi", ".mkv")  # containers OpenCV's FFmpeg writes mp4v into
    FOURCC = "mp4v"
    MAX_REPEAT = 50  # after a reconnect the frame index may jump far: do not fill the whole gap

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        super().__init__(path, overwrite)
        self._sources: Sequence[Source] = ()
        self._writers: dict[int, cv2.VideoWriter] = {}
        self._last_index: dict[int, int] = {}

    def planned_paths(self, num_sources: int) -> list[Path]:
        return [per_source_path(self.path, i, num_sources) for i in range(num_sources)]

    def start(self, context: SinkContext) -> None:
        super().start(context)
        self._sources = context.sources

    def _writer(self, source_index: int, width: int, height: int) -> cv2.VideoWriter:
        writer = self._writers.get(source_index)
        if writer is None:
            output = PartialFile(per_source_path(self.path, source_index, len(self._sources)))
            fps = self._sources[source_index].fps or DEFAULT_FPS
            writer = cv2.VideoWriter(str(output.partial), cv2.VideoWriter_fourcc(*self.FOURCC), fps, (width, height))
            if not writer.isOpened():
                raise PoseStreamError(f"cannot write video {output.target} ({self.FOURCC}, {width}x{height} at "
                                      f"{fps:g} fps)")
            log.info("writing %s: %dx%d at %.2f fps", output.partial, width, height, fps)
            self._writers[source_index] = writer
            self.outputs.append(output)
        return writer

    def write(self, result: FrameResult) -> None:
        image = result.annotated if result.annotated is not None else result.frame.image
        height, width = image.shape[:2]
        source = result.frame.source_index
        writer = self._writer(source, width, height)
        last = self._last_index.get(source)
        repeat = 1 if last is None else min(max(1, result.frame.index - last), self.MAX_REPEAT)
        self._last_index[source] = result.frame.index
        for _ in range(repeat):
            writer.write(image)

    def close(self) -> None:
        if not self._writers:
            return
        for writer in self._writers.values():
            writer.release()
        self._writers.clear()
        self._finish(self._succeeded())


_DIGITS = re.compile(r"\d+")


def image_ids(names: Sequence[str]) -> list[int]:
    """COCO image ids: the last run of digits in each file name (000000397133.jpg -> 397133); if that does not
    give every image its own id, the images' positions (0, 1, ...)."""
    ids = []
    for name in names:
        runs = _DIGITS.findall(Path(name).stem)
        ids.append(int(runs[-1]) if runs else None)
    if None in ids or len(set(ids)) != len(ids):
        log.warning("image names do not all carry a distinct number; COCO image ids are image positions instead")
        return list(range(len(names)))
    return ids


class CocoResultsSink(FileSink):
    """COCO keypoint results for image folders: [{"image_id", "category_id": 1, "keypoints": [x, y, v, ...],
    "score"}] per person, written when the run ends (a stopped run leaves a valid file; a failed one leaves
    `NAME.partial.json` and the old file)."""

    option = "--coco-results"
    extensions = (".json",)

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        super().__init__(path, overwrite)
        self._ids: list[dict[str, int]] = []
        self._results: list[dict[str, Any]] = []
        self._started = False

    @staticmethod
    def check_sources(sources: Sequence[Source]) -> None:
        for source in sources:
            if not isinstance(source, ImageSequenceSource):
                raise PoseStreamError(f"--coco-results needs image files or a folder of images, not {source.source_id}")

    def start(self, context: SinkContext) -> None:
        self.check_sources(context.sources)
        super().start(context)
        self._ids = [dict(zip((p.name for p in s.paths), image_ids([p.name for p in s.paths])))
                     for s in context.sources if isinstance(s, ImageSequenceSource)]
        self._started = True

    def write(self, result: FrameResult) -> None:
        image_id = self._ids[result.frame.source_index][result.frame.name]
        for person, score in zip(result.poses.keypoints, result.poses.scores):
            self._results.append({
                "image_id": image_id,
                "category_id": 1,
                "keypoints": [round(float(v), 3) for v in person.reshape(-1)],
                "score": round(float(score), 5),
            })

    def close(self) -> None:
        if not self._started:
            return
        self._started = False
        output = PartialFile(self.path)
        self.outputs = [output]
        with _open_for_writing(output.partial) as f:
            json.dump(self._results, f)
        output.finish(self._succeeded())
        log.info("%d COCO results in %s", len(self._results), output.target if output.state == "written" else
                 output.partial)


class WindowSink(Sink):
    """One OpenCV window per source; q or Esc (or closing the window) stops the run."""

    needs_render = True

    def __init__(self) -> None:
        if not gui_available():
            raise PoseStreamError(f"--show: {HEADLESS_HINT}")
        self._names: dict[int, str] = {}
        self._request_stop: Callable[[], None] = lambda: None

    def start(self, context: SinkContext) -> None:
        self._request_stop = context.request_stop
        self._names = {i: f"pose-stream: {s.source_id}" for i, s in enumerate(context.sources)}

    def write(self, result: FrameResult) -> None:
        name = self._names[result.frame.source_index]
        cv2.imshow(name, result.annotated if result.annotated is not None else result.frame.image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1:
            self._request_stop()

    def close(self) -> None:
        if self._names:
            cv2.destroyAllWindows()
            self._names = {}
