"""Fixtures for the pipeline tests: media files and a real RTSP server (GStreamer, Debian's python3)."""
from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pipeline_fakes import make_frames, write_video  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = HERE.parent / "rtsp_server.py"


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


def _rtsp_missing() -> str | None:
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import GstRtspServer"], capture_output=True, text=True)
    if probe.returncode:
        return ("GStreamer RTSP server bindings missing (apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi "
                "gstreamer1.0-plugins-{base,good,bad,ugly})")
    return None


RTSP_MISSING = _rtsp_missing()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """A gst-rtsp-server subprocess: start, kill, restart on the same port, freeze (SIGSTOP), thaw."""

    def __init__(self, port: int, fps: int = 25) -> None:
        self.port = port
        self.fps = fps
        self.proc: subprocess.Popen | None = None
        self.url = f"rtsp://127.0.0.1:{port}/stream"

    def start(self, timeout: float = 10.0) -> float:
        """Start and wait for READY; returns the time.monotonic() when it was ready."""
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--fps", str(self.fps)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    return time.monotonic()
                if not line:
                    break
        self.kill()
        raise RuntimeError("the RTSP test server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL ends a frozen (SIGSTOPped) server too
            self.proc.wait(5)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


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
