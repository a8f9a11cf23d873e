"""Cross-stream batching in the inference stage: gathered round robin, bounded by size and wait, routed back in
order, equal to one frame at a time; paced (camera-like) generated sources; the batch-range check."""
from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest

from pipeline_fakes import CollectSink, FakeEstimator
from pose_stream.errors import PoseStreamError
from pose_stream.pipeline import GeneratedSource, Pipeline, PipelineConfig
from pose_stream.pipeline.channels import END, FrameMux
from pose_stream.pipeline.frames import Frame
from pose_stream.pipeline.sources.demo import pattern_frames


def _frame(source: int, seq: int, age: float = 0.0) -> Frame:
    now = time.monotonic() - age
    return Frame(f"s{source}", source, seq, seq, np.zeros((2, 2, 3), np.uint8), now, time.time())


def _mux(live: list[bool], depth: int = 8, limit: int | None = None) -> FrameMux:
    return FrameMux(live, depth, threading.Event(), threading.Event(), limit=limit)


def test_a_batch_takes_one_frame_per_source_per_round():
    mux = _mux([False, False, False])
    for source, count in ((0, 3), (1, 3), (2, 1)):
        for seq in range(count):
            mux.put(source, _frame(source, seq))
    batch = mux.get_batch(5, wait=10.0)
    assert [(f.source_index, f.seq) for f in batch] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)]
    assert [(f.source_index, f.seq) for f in mux.get_batch(5, wait=0.0)] == [(0, 2), (1, 2)]


def test_a_partial_batch_runs_when_its_oldest_frame_has_waited_long_enough():
    mux = _mux([False])
    mux.put(0, _frame(0, 0))
    started = time.monotonic()
    batch = mux.get_batch(8, wait=0.15)
    took = time.monotonic() - started
    assert len(batch) == 1 and 0.1 <= took < 2.0
    mux.put(0, _frame(0, 1, age=1.0))  # already older than the wait: no waiting at all
    started = time.monotonic()
    assert len(mux.get_batch(8, wait=0.15)) == 1 and time.monotonic() - started < 0.1


def test_ended_sources_flush_what_is_left_then_end_and_the_limit_holds():
    mux = _mux([False, False])
    mux.put(0, _frame(0, 0))
    mux.end(0)
    mux.end(1)
    assert len(mux.get_batch(4, wait=10.0)) == 1 and mux.get_batch(4, wait=10.0) is END
    limited = _mux([False], limit=3)
    for seq in range(5):
        limited.put(0, _frame(0, seq))
    assert len(limited.get_batch(8, wait=0.0)) == 3 and limited.get_batch(8, wait=0.0) is END


def test_every_frame_of_every_file_source_once_and_in_order():
    estimator = FakeEstimator()
    sources = [GeneratedSource(num_frames=n, size=(64, 48), frames=pattern_frames, source_id=f"clip{n}")
               for n in (23, 17, 30)]
    collect = CollectSink()
    stats = Pipeline(estimator, sources, [collect], PipelineConfig(batch=4, batch_wait=0.05)).run()
    for index, n in enumerate((23, 17, 30)):
        assert [r.frame.index for r in collect.results if r.frame.source_index == index] == list(range(n))
    assert stats.frames == 70 and max(stats.batch_sizes) == 4 and sum(k * v for k, v in stats.batch_sizes.items()) == 70


def test_live_sources_share_the_network_fairly():
    """Four cameras, inference slower than all of them together: each gets at least 20% of the frames."""
    estimator = FakeEstimator(delays={"infer": 0.02})
    sources = [GeneratedSource(num_frames=40, size=(64, 48), frames=pattern_frames, fps=50.0, paced=True,
                               source_id=f"cam{i}") for i in range(4)]
    collect = CollectSink()
    stats = Pipeline(estimator, sources, [collect], PipelineConfig(batch=2, batch_wait=0.01)).run()
    shares = Counter(r.frame.source_index for r in collect.results)
    assert all(shares[i] >= 0.2 * stats.frames for i in range(4)), shares
    assert sum(stats.input_drops) > 0  # the cameras were faster than inference: stale frames were dropped
    for i in range(4):  # newest frame kept: a camera's frames come out in capture order
        indices = [r.frame.index for r in collect.results if r.frame.source_index == i]
        assert indices == sorted(indices)
    sources_json = stats.to_dict()["sources"]
    assert all(s["latency_ms"]["p50"] is not None and s["latency_ms"]["p99"] is not None for s in sources_json)


def test_a_paced_source_delivers_at_its_frame_rate():
    source = GeneratedSource(num_frames=6, size=(32, 32), frames=pattern_frames, fps=20.0, paced=True)
    assert source.live
    started = time.monotonic()
    frames = list(source.images(threading.Event()))
    assert len(frames) == 6 and 0.2 <= time.monotonic() - started < 2.0  # 5 intervals of 50 ms


def test_batched_outputs_equal_one_frame_at_a_time():
    """FP32 on the CPU, the same frames: the network outputs of a batch of 4 (different sizes mixed) equal the
    outputs one frame at a time to 1e-5, frame by frame."""
    from pose_stream.estimator import PoseEstimator

    rng = np.random.default_rng(7)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((96, 128), (96, 128), (120, 90), (96, 128))]
    with PoseEstimator("tiny_w8", input_size=64, device="cpu") as estimator:
        prepared = [estimator.prepare(image) for image in images]
        batched = estimator.infer_batch(prepared)
        single = [estimator.infer(p) for p in prepared]
    for b, s in zip(batched, single):
        for bs, ss in zip(b.scales, s.scales):
            for x, y in zip((*bs.outputs, *bs.flipped), (*ss.outputs, *ss.flipped)):
                assert x.shape == y.shape and np.abs(x).max() > 0
                np.testing.assert_allclose(x, y, rtol=0, atol=1e-5)


def test_batched_people_equal_one_frame_at_a_time_through_the_pipeline():
    """The demo model on demo frames from two sources: the same people, frame by frame, batched or not."""
    from pose_stream.estimator import PoseEstimator
    from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME, demo_model_path

    def run(batch: int) -> dict:
        collect = CollectSink()
        sources = [GeneratedSource(num_frames=4, source_id=f"demo{i}") for i in range(2)]
        estimator = PoseEstimator(DEMO_MODEL_NAME, weights=demo_model_path(), input_size=DEMO_INPUT_SIZE,
                                  device="cpu", batch=batch)
        Pipeline(estimator, sources, [collect], PipelineConfig(batch=batch, batch_wait=1.0)).run()
        return {(r.frame.source_index, r.frame.index): r.poses for r in collect.results}

    one, four = run(1), run(4)
    assert one.keys() == four.keys() and len(one) == 8
    assert sum(len(p) for p in one.values()) > 0  # people were found
    for key, poses in one.items():
        assert len(poses) == len(four[key]), key
        np.testing.assert_allclose(poses.keypoints, four[key].keypoints, rtol=0, atol=1e-3)


class _LimitedBackend:
    """Stands in for a TensorRT engine built for batches of 1 to 2."""

    batch_range = (1, 2)
    num_joints = 17
    input_shape = (None, 3, None, None)

    class info:  # noqa: N801 - a BackendInfo stand-in
        name = "tensorrt"
        device = "cuda:0"

    closed = False

    def close(self):
        _LimitedBackend.closed = True


def test_a_backend_whose_batch_range_is_too_small_is_one_line(monkeypatch):
    from pose_stream.estimator import PoseEstimator

    monkeypatch.setattr(PoseEstimator, "_create_backend", lambda self: _LimitedBackend())
    with pytest.raises(PoseStreamError) as err:
        PoseEstimator("tiny_w8", batch=4, eager=True)
    message = str(err.value)
    assert "--batch 4 needs 8 network inputs" in message and "1 to 2" in message and "--batch 2-8" in message
    assert _LimitedBackend.closed
    PoseEstimator("tiny_w8", batch=1, eager=True)  # without batching a frame's passes are split, as ever
