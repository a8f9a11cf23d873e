"""A real RTSP server for the tests: GStreamer's gst-rtsp-server on 127.0.0.1.

Run with Debian's /usr/bin/python3 (the GStreamer Python bindings live there, not in the project's
Python). Prints `READY <url>` once it listens, serves until SIGINT/SIGTERM.

    /usr/bin/python3 tests/pipeline/rtsp_server.py --port 8554 [--fps 25] [--size 320x240]
"""
from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def launch_line(width: int, height: int, fps: int) -> str:
    # format=I420: without it x264 emits High 4:4:4, which OpenCV's FFmpeg decodes but openh264 cannot.
    # key-int-max=fps: a key frame every second, so a (re)connecting client starts decoding quickly.
    return (
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width={width},height={height},"
        f"framerate={fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", default="/stream")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(width, height, args.fps))
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"FAILED to listen on 127.0.0.1:{args.port}", flush=True)
        return 1

    loop = GLib.MainLoop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"READY rtsp://127.0.0.1:{args.port}{args.mount}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
