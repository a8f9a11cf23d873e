"""The pipeline against a real RTSP server (GStreamer on 127.0.0.1): arrival, restart, freeze, slow consumer."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pipeline_fakes import CollectSink, FakeEstimator, pipeline_threads
from pose_stream.pipeline import LiveOptions, Pipeline, SourceState, open_source

pytestmark = pytest.mark.rtsp


class Running:
    """A pipeline running in a background thread for the duration of a test."""

    def __init__(self, url: str, estimator: FakeEstimator | None = None, options: LiveOptions | None = None) -> None:
        self.source = open_source(url, options)
        self.sink = CollectSink()
        self.estimator = estimator or FakeEstimator()
        self.pipeline = Pipeline(self.estimator, [self.source], [self.sink])
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-runner")
        self.thread.start()

    def _run(self) -> None:
        try:
            self.pipeline.run()
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def wait_frames(self, count: int, after: float = 0.0, timeout: float = 10.0) -> float:
        """Wait until `count` frames captured after `after` (monotonic) were processed; return when it happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = [r for r in self.sink.results if r.frame.captured_at > after]
            if len(fresh) >= count:
                return time.monotonic()
            time.sleep(0.01)
        raise AssertionError(f"fewer than {count} frames within {timeout} s (state {self.source.status.state})")

    def stop(self) -> None:
        self.pipeline.stop()
        self.thread.join(5)
        assert not self.thread.is_alive(), "the pipeline did not stop"
        assert self.error is None, self.error


def test_frames_arrive_in_order_with_low_latency(rtsp_server):
    before = set(threading.enumerate())
    run = Running(rtsp_server.url)
    run.wait_frames(25)
    assert run.source.status.state is SourceState.STREAMING
    run.stop()
    seqs = [r.frame.seq for r in run.sink.results]
    indices = [r.frame.index for r in run.sink.results]
    assert seqs == sorted(set(seqs)) and indices == sorted(set(indices))
    assert all(r.frame.source_id == rtsp_server.url for r in run.sink.results)
    assert np.median([r.latency for r in run.sink.results]) < 0.2
    assert run.estimator.close_thread == run.estimator.backend_thread
    assert run.source.status.state is SourceState.ENDED
    assert not pipeline_threads() and set(threading.enumerate()) <= before | {threading.current_thread()}


def test_resumes_within_2s_after_server_restart(rtsp_server):
    run = Running(rtsp_server.url)
    try:
        run.wait_frames(10)
        rtsp_server.kill()
        time.sleep(1.0)
        assert run.source.status.state is SourceState.RECONNECTING
        ready = rtsp_server.start()
        resumed = run.wait_frames(1, after=ready, timeout=5.0)
        assert resumed - ready < 2.0, f"resumed {resumed - ready:.2f} s after the server came back"
        assert run.source.status.reconnects >= 1
    finally:
        run.stop()
    assert run.pipeline.stats.reconnects >= 1


def test_frozen_server_is_detected_as_stalled_and_recovers(rtsp_server):
    run = Running(rtsp_server.url)
    try:
        run.wait_frames(10)
        rtsp_server.freeze()
        frozen = time.monotonic()
        while run.source.status.state is SourceState.STREAMING and time.monotonic() - frozen < 5:
            time.sleep(0.02)
        detected = time.monotonic() - frozen
        assert run.source.status.state in (SourceState.STALLED, SourceState.RECONNECTING)
        assert detected < 3.0, f"stall detected after {detected:.2f} s"
        time.sleep(1.0)
        rtsp_server.thaw()
        thawed = time.monotonic()
        run.wait_frames(5, after=thawed, timeout=8.0)
        assert run.source.status.state is SourceState.STREAMING
        assert run.source.status.stalls >= 1
        states = [s for _, s in run.source.status.history]
        assert SourceState.STALLED in states and states[-1] is SourceState.STREAMING
    finally:
        run.stop()


def test_slow_consumer_keeps_lag_bounded(rtsp_server):
    """Inference at 5 fps on a 25 fps stream: the newest frame wins, latency stays flat, drops are counted."""
    run = Running(rtsp_server.url, FakeEstimator(delays={"infer": 0.2}))
    try:
        start = run.wait_frames(3)
        time.sleep(4.0)
        elapsed = time.monotonic() - start
    finally:
        run.stop()
    results = run.sink.results[3:]
    latencies = np.array([r.latency for r in results])
    assert len(results) >= 10
    # Without latest-frame-wins, 4 s at 5 of 25 fps would build 3.2 s of lag; with it, one inference or so.
    assert latencies.max() < 0.8, latencies
    assert latencies[-5:].mean() < latencies[:5].mean() + 0.2
    # The capture thread keeps reading at the stream's rate; the pipeline drops what inference cannot take.
    assert run.source.status.frames_read / (elapsed + 0.6) > 15
    assert run.pipeline.stats.input_drops[0] > 3 * len(results)
    gaps = np.diff([r.frame.index for r in results])
    assert np.median(gaps) >= 3


def test_udp_transport_streams_too(rtsp_server):
    run = Running(rtsp_server.url, options=LiveOptions(transport="udp"))
    try:
        run.wait_frames(10)
    finally:
        run.stop()
    assert run.source.status.reconnects == 0
