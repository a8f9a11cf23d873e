"""The live view's server over real HTTP: the JSON, the MJPEG stream, Prometheus metrics, bad addresses, ports in
use, and viewers that leave."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from served_run import ServedRun
from pose_stream.errors import PoseStreamError
from pose_stream.web import LiveView, WebServer, parse_address
from pose_stream.web.server import ENCODE_THREADS


def _get(url: str, timeout: float = 10) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, dict(response.headers), response.read()


def _wait_for(predicate, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize("text, expected", [
    ("8080", ("127.0.0.1", 8080)), (":8080", ("127.0.0.1", 8080)), ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:9000", ("::1", 9000)), ("localhost:1", ("localhost", 1)), ("cam-host.local:65535", ("cam-host.local", 65535)),
])
def test_addresses(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "host:", ":0", "70000", "::1:80", "bad host:80", "-x:80", "1.2.3.4:8o"])
def test_bad_addresses_are_one_line(text):
    with pytest.raises(PoseStreamError) as info:
        parse_address(text)
    assert "\n" not in str(info.value) and "--serve" in str(info.value)


def test_status_poses_and_metrics(served):
    _wait_for(lambda: served.view.status()["sources"][1]["frames"] >= 5 if served.view.num_sources else False)
    status, headers, body = _get(served.url + "api/status")
    data = json.loads(body)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert [s["source"] for s in data["sources"]] == ["cam0", "cam1"]
    assert all(s["state"] == "streaming" and s["people"] == 3 and s["fps"] > 0 for s in data["sources"])
    poses = json.loads(_get(served.url + "api/poses")[2])
    people = poses["sources"][0]["people"]
    assert len(people) == 3 and len(people[0]["keypoints"]) == 17 and "track_id" in people[0]

    from prometheus_client.parser import text_string_to_metric_families

    text = _get(served.url + "metrics")[2].decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("pose_stream_frames_read", "pose_stream_frames_processed", "pose_stream_frames_dropped",
                 "pose_stream_reconnects", "pose_stream_source_state", "pose_stream_stage_seconds",
                 "pose_stream_latency_seconds", "pose_stream_people", "pose_stream_fps"):
        assert name in families, name
    read = {s.labels["source"]: s.value for s in families["pose_stream_frames_read"].samples
            if s.name.endswith("_total")}
    assert set(read) == {"cam0", "cam1"} and min(read.values()) >= 5
    streaming = [s for s in families["pose_stream_source_state"].samples if s.labels["state"] == "streaming"]
    assert [s.value for s in streaming] == [1.0, 1.0]
    stages = {s.labels["stage"] for s in families["pose_stream_stage_seconds"].samples}
    assert {"prepare", "infer", "group", "track", "render"} <= stages


def _read_parts(url: str, count: int) -> list[np.ndarray]:
    """The first `count` JPEG frames of an MJPEG stream, decoded."""
    images = []
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(images) < count:
            line = response.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                response.readline()
                data = response.read(length)
                images.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    return images


def test_mjpeg_stream_sends_new_frames(served):
    images = _read_parts(served.url + "stream/1.mjpg", 3)
    assert all(image is not None and image.shape == (180, 320, 3) for image in images)
    assert not np.array_equal(images[0], images[2])  # the video moves
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(served.url + "stream/7.mjpg")
    assert info.value.code == 404


def test_viewers_that_leave_leave_nothing_behind(served):
    _read_parts(served.url + "stream/0.mjpg", 1)  # warm up the encoder threads
    threads_before = {t.name for t in threading.enumerate()}
    sockets = []
    for _ in range(5):  # browsers that open the stream and vanish mid-frame
        s = socket.create_connection(("127.0.0.1", served.server.port))
        s.sendall(b"GET /stream/0.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(200)
        sockets.append(s)
    _wait_for(lambda: served.server.streams == 5)
    for s in sockets:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
        s.close()
    _wait_for(lambda: served.server.streams == 0)
    extra = {t.name for t in threading.enumerate()} - threads_before
    # no thread per viewer: at most the encoder pool's own threads, started on demand
    assert all(name.startswith("pose-stream-jpeg") for name in extra)
    assert sum(t.name.startswith("pose-stream-jpeg") for t in threading.enumerate()) <= ENCODE_THREADS


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WebServer(LiveView(), "127.0.0.1", port)
        with pytest.raises(PoseStreamError) as info:
            server.start()
    message = str(info.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message and "in use" in message
    assert not any(t.name == "pose-stream-web" for t in threading.enumerate())


def test_stop_ends_open_streams_and_the_thread():
    run = ServedRun(sources=1).__enter__()
    try:
        response = urllib.request.urlopen(run.url + "stream/0.mjpg", timeout=10)
        response.readline()
    finally:
        run.__exit__(None, None, None)
    response.close()
    assert not any(t.name.startswith(("pose-stream-web", "pose-stream-jpeg")) for t in threading.enumerate())
