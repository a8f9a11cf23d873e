"""The live view in a browser (`--serve HOST:PORT`): each source's annotated video (MJPEG), its numbers, the
latest poses as JSON and Prometheus metrics, served by aiohttp from a thread of its own.

    pipeline output stage --LiveView.write--> latest frame, poses, counters per source
                                                   ^ read by the server's handlers (and the metrics collector)

May import: aiohttp, prometheus-client, OpenCV and pose_stream.{pipeline, errors}; nothing imports web/ except
the CLI.
"""
from pose_stream.web.address import DEFAULT_HOST, parse_address
from pose_stream.web.live import LiveView
from pose_stream.web.server import WebServer

__all__ = ["DEFAULT_HOST", "LiveView", "WebServer", "parse_address"]
