"""Start, kill, freeze and thaw the RTSP test server (tests/pipeline/rtsp_server.py under Debian's python3)."""
from __future__ import annotations

import select
import signal
import socket
import subprocess
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"


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
