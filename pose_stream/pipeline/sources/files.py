"""Finite sources: video files and image files, folders and globs. Every frame, in order."""
from __future__ import annotations

import glob
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2

from pose_stream.errors import PoseStreamError
from pose_stream.pipeline.sources.base import DEFAULT_FPS, CapturedImage, Source, SourceState, captured

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Assumed for image sequences (an annotated video needs some rate) and streams that report none.


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


class VideoFileSource(Source):
    """A video file decoded with OpenCV's FFmpeg backend; ends at the end of the file."""

    live = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PoseStreamError(f"video file not found: {self.path}")
        super().__init__(str(self.path))
        self._fps: float | None = None
        self._frame_count: int | None = None

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def expected_frames(self) -> int | None:
        return self._frame_count

    @property
    def input_paths(self) -> tuple[Path, ...]:
        return (self.path,)

    def open(self) -> cv2.VideoCapture:
        """Open the file; PoseStreamError naming it when FFmpeg cannot."""
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise PoseStreamError(f"cannot read video {self.path}: not a video, or corrupt")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._fps = fps if 0 < fps <= 1000 else DEFAULT_FPS
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._frame_count = count if count > 0 else None
        return cap

    def _undecodable(self) -> PoseStreamError:
        return PoseStreamError(f"cannot read video {self.path}: no frame decodes (corrupt or unsupported codec)")

    def check(self) -> None:
        cap = self.open()
        try:
            if not cap.read()[0]:
                raise self._undecodable()
        finally:
            cap.release()

    def images(self, stop: threading.Event) -> Iterator[CapturedImage]:
        self.status.set_state(SourceState.CONNECTING)
        cap = self.open()
        index = 0
        try:
            self.status.set_state(SourceState.STREAMING)
            while not stop.is_set():
                ok, image = cap.read()
                if not ok:
                    break
                self.status.frame_read()
                yield captured(image, index)
                index += 1
            if index == 0 and not stop.is_set():
                raise self._undecodable()
            if self._frame_count and index < self._frame_count - 1 and not stop.is_set():
                log.warning("%s: decoding stopped after %d of %d frames (truncated or corrupt file)",
                            self.source_id, index, self._frame_count)
        finally:
            cap.release()


def collect_images(spec: str) -> list[Path]:
    """The image files a folder or glob names, sorted by name; PoseStreamError when there are none."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and is_image_path(p))
        if not files:
            raise PoseStreamError(f"directory {path} has no images (looked for {', '.join(IMAGE_SUFFIXES)})")
        return files
    files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if is_image_path(p) and Path(p).is_file())
    if not files:
        raise PoseStreamError(f"the pattern {spec!r} matches no image files")
    return files


class ImageSequenceSource(Source):
    """Image files read in the given order; each image is one frame.

    An image that cannot be read (corrupt, truncated, not an image) is skipped with a warning and counted in
    `status.skipped`; with `strict` it ends the run instead. A run in which no image at all can be read fails.
    """

    live = False
    video = False

    def __init__(self, paths: Sequence[str | Path], source_id: str | None = None, strict: bool = False) -> None:
        self.strict = strict
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise PoseStreamError("no images to read")
        for p in self.paths:
            if not p.is_file():
                raise PoseStreamError(f"image file not found: {p}")
        super().__init__(source_id or (str(self.paths[0]) if len(self.paths) == 1 else str(self.paths[0].parent)))

    @property
    def fps(self) -> float | None:
        return DEFAULT_FPS

    @property
    def expected_frames(self) -> int | None:
        return len(self.paths)

    @property
    def input_paths(self) -> tuple[Path, ...]:
        return tuple(self.paths)

    def images(self, stop: threading.Event) -> Iterator[CapturedImage]:
        self.status.set_state(SourceState.STREAMING)
        for index, path in enumerate(self.paths):
            if stop.is_set():
                return
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                if self.strict:
                    raise PoseStreamError(f"cannot read image {path}: not an image, or corrupt (--strict stops here)")
                self.status.skipped += 1
                log.warning("skipping %s: not an image, or corrupt", path)
                continue
            self.status.frame_read()
            yield captured(image, index, name=path.name)
        if self.status.skipped == len(self.paths):
            raise PoseStreamError(f"none of the {len(self.paths)} images of {self.source_id} could be read "
                                  "(not images, or corrupt)")
