"""Fixtures for the pipeline tests: media files and a real RTSP server (GStreamer, Debian's python3)."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pipeline_fakes import make_frames, write_video  # noqa: E402
from pipeline_rtsp import RTSP_MISSING, RtspServer, free_port  # noqa: E402


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", 24)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    # Names carry COCO-like ids, written out of order so sorting is tested.
    for i, frame in reversed(list(enumerate(make_frames(6, seed=1)))):
        cv2.imwrite(str(folder / f"{1000 + 7 * i:012d}.png"), frame)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def rtsp_server():
    if RTSP_MISSING:
        pytest.skip(RTSP_MISSING)
    server = RtspServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()
