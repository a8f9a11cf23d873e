"""Frame sources (cameras, streams, video files, images, the demo) and `open_source`, which turns a --source
string into one. May import: OpenCV and pose_stream.{synthetic, redact, errors}; nothing else of the pipeline."""
from __future__ import annotations

import glob
from pathlib import Path

from pose_stream.errors import PoseStreamError
from pose_stream.pipeline.sources.base import CapturedImage, Source, SourceState, SourceStatus
from pose_stream.redact import mask_credentials, mask_url
from pose_stream.pipeline.sources.demo import GeneratedSource, demo_frames, seeded_demo
from pose_stream.pipeline.sources.files import (
    IMAGE_SUFFIXES, ImageSequenceSource, VideoFileSource, collect_images, is_image_path,
)
from pose_stream.pipeline.sources.live import STREAM_SCHEMES, LiveOptions, LiveSource, ReconnectPolicy

SOURCE_HELP = ("webcam, a camera index (0, 1, ...), an rtsp:// or http(s):// URL, a video file, an image file, "
               "a folder or glob of images, or demo (demo:SEED for another scene)")


def open_source(spec: str, live_options: LiveOptions | None = None, strict: bool = False,
                pace_demo: bool = False) -> Source:
    """The source a --source string names; PoseStreamError (one line) when it names nothing usable.

    Nothing is opened yet: streams and videos open in their capture thread; files and folders are checked here.
    strict: an unreadable image in a folder or glob ends the run (default: it is skipped with a warning).
    pace_demo: `demo` (or `demo:SEED`, another seed of the animated scene) plays like a camera, at its frame
        rate with the newest frame kept; otherwise like a file, every frame as fast as it is taken.
    """
    text = spec.strip()
    if text == "demo" or text.startswith("demo:"):
        seed_text = text.partition(":")[2] or "0"
        if not seed_text.isdigit():
            raise PoseStreamError(f"bad demo source {text!r}: expected demo or demo:SEED, such as demo:3")
        seed = int(seed_text)
        frames = demo_frames if seed == 0 else seeded_demo(seed)
        return GeneratedSource(source_id=text if seed else "demo", frames=frames, paced=pace_demo)
    if text == "webcam":
        return LiveSource(0, live_options)
    if text.isdigit():
        return LiveSource(int(text), live_options)
    if text.lower().startswith(STREAM_SCHEMES):
        return LiveSource(text, live_options)
    if "://" in text:
        raise PoseStreamError(f"unsupported stream {mask_url(text)!r}: use rtsp://, rtsps://, http:// or https://")
    path = Path(text)
    if path.is_dir() or glob.has_magic(text):
        return ImageSequenceSource(collect_images(text), source_id=text, strict=strict)
    if path.is_file():
        return ImageSequenceSource([path], strict=strict) if is_image_path(path) else VideoFileSource(path)
    if path.suffix or "/" in text or "\\" in text:
        raise PoseStreamError(f"file not found: {text}")
    raise PoseStreamError(f"unknown source {text!r}: expected {SOURCE_HELP}")


__all__ = [
    "IMAGE_SUFFIXES", "SOURCE_HELP", "CapturedImage", "GeneratedSource", "ImageSequenceSource", "LiveOptions",
    "LiveSource", "ReconnectPolicy", "Source", "SourceState", "SourceStatus", "VideoFileSource", "collect_images",
    "demo_frames", "mask_credentials", "open_source",
]
