"""The demo as a new user meets it: like a camera (paced, newest frame kept, latency bounded), never silent in a
log, and one person threshold for everything it writes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline_fakes import CollectSink, FakeEstimator
from pose_stream.errors import PoseStreamError
from pose_stream.pipeline import Pipeline, PipelineConfig, open_source
from pose_stream.poses import Poses
from test_pipeline_cli import run_cli


def test_the_demo_plays_like_a_camera_by_default_and_like_a_file_on_request():
    from pose_stream.pipeline.sources.demo import DEMO_FPS

    camera = open_source("demo", pace_demo=True)
    assert camera.live and camera.paced and camera.fps == DEMO_FPS
    offline = open_source("demo")
    assert not offline.live
    other = open_source("demo:7", pace_demo=True)
    first = next(other.images(__import__("threading").Event())).image
    assert other.source_id == "demo:7" and not np.array_equal(first, next(offline.images(
        __import__("threading").Event())).image)
    with pytest.raises(PoseStreamError, match="demo:SEED"):
        open_source("demo:x")


def test_a_slow_model_on_the_paced_demo_drops_frames_instead_of_falling_behind(tmp_path):
    """Inference at 10 frames/s against a 25 fps demo: frames are dropped and counted, latency stays near one
    inference, and the JSON's frame_index is the clip's frame number."""
    jsonl = tmp_path / "d.jsonl"
    proc = run_cli("--source", "demo", "--max-frames", "12", "--json", str(jsonl), "--no-render",
                   env={"FAKE_DELAYS": json.dumps({"infer": 0.1})})
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    indices = [r["frame_index"] for r in records]
    assert len(records) == 12 and indices == sorted(indices) and indices[-1] > 15  # frames were skipped
    assert max(r["timestamps"]["latency_ms"] for r in records) < 1000
    assert "dropped 0" not in proc.stdout


def test_a_run_logging_to_a_file_reports_progress(tmp_path):
    proc = run_cli("--source", "demo", "--every-frame", "--max-frames", "60", "--no-render",
                   env={"FAKE_DELAYS": json.dumps({"infer": 0.12})})
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("pose-stream: ") and "FPS" in line]
    assert lines and "frames" in lines[0] and "latency p50" in lines[0], proc.stderr


class _Fragments(FakeEstimator):
    """One real person (score 0.9) and two fragments (0.01, 0.14) per frame."""

    def group(self, aggregated):
        self._stage("group")
        keypoints = np.zeros((3, 17, 3), np.float32)
        keypoints[..., 2] = 0.5
        return Poses(keypoints, np.array([0.9, 0.01, 0.14], np.float32), "coco")


def test_what_is_drawn_is_what_is_written():
    collect = CollectSink()
    Pipeline(_Fragments(), [open_source("demo")], [collect], PipelineConfig(max_frames=3, min_score=0.15)).run()
    assert [len(r.poses) for r in collect.results] == [1, 1, 1]
    every = CollectSink()
    Pipeline(_Fragments(), [open_source("demo")], [every], PipelineConfig(max_frames=2)).run()
    assert [len(r.poses) for r in every.results] == [3, 3]


@pytest.mark.parametrize("factory", ["generator", "list iterator"])
def test_a_generated_source_takes_any_iterator_of_frames(factory):
    """A clip rendered beforehand (a list) plays as well as a generator does; a generator is closed at the end."""
    from pose_stream.pipeline import GeneratedSource

    clip = [np.full((48, 64, 3), i, np.uint8) for i in range(5)]
    closed = []

    def generator(n, size):
        try:
            yield from clip[:n]
        finally:
            closed.append(True)

    frames = generator if factory == "generator" else (lambda n, size: iter(clip[:n]))
    collect = CollectSink()
    Pipeline(FakeEstimator(), [GeneratedSource(num_frames=5, size=(64, 48), frames=frames)], [collect]).run()
    assert [r.frame.index for r in collect.results] == list(range(5))
    assert closed == ([True] if factory == "generator" else [])


def test_the_estimator_is_warmed_up_in_the_inference_thread_before_any_source_opens():
    """A network that takes long to load delays the start, not the first frames' latency."""
    import threading
    import time

    from pose_stream.pipeline import GeneratedSource, PipelineConfig
    from pose_stream.pipeline.sources.demo import pattern_frames

    class SlowToLoad(FakeEstimator):
        def __init__(self) -> None:
            super().__init__()
            self.warmed_in: list[str] = []

        def warm_up(self) -> None:
            time.sleep(0.6)
            self.warmed_in.append(threading.current_thread().name)

    def latencies(warm_up: bool) -> tuple[list[float], SlowToLoad]:
        estimator = SlowToLoad()
        if not warm_up:  # the load happens on the first frame instead, as it did before warm-up existed
            original = estimator.infer

            def infer(prepared, _first=[True]):
                if _first[0]:
                    _first[0] = False
                    estimator.warm_up()
                return original(prepared)

            estimator.infer = infer
        collect = CollectSink()
        source = GeneratedSource(num_frames=6, size=(64, 48), fps=25.0, paced=True, frames=pattern_frames)
        Pipeline(estimator, [source], [collect], PipelineConfig(warm_up=warm_up)).run()
        return [r.latency for r in collect.results], estimator

    warm, estimator = latencies(True)
    assert estimator.warmed_in == ["pose-stream-infer"]
    assert max(warm) < 0.3, warm
    cold, _ = latencies(False)
    assert max(cold) >= 0.5, cold  # the same load without warm-up is a frame's latency


def test_a_slow_start_is_said_once_in_the_log(monkeypatch, caplog):
    """The first run after an install compiles the decoding kernels during the warm-up: a user is told why
    nothing happens yet, once, and a quick start says nothing."""
    import time

    import pose_stream.pipeline.pipeline as pipeline_module
    from pose_stream.pipeline import GeneratedSource
    from pose_stream.pipeline.sources.demo import pattern_frames

    class Slow(FakeEstimator):
        def __init__(self, seconds: float) -> None:
            super().__init__()
            self.seconds = seconds

        def warm_up(self) -> None:
            time.sleep(self.seconds)

    monkeypatch.setattr(pipeline_module, "SLOW_START_S", 0.2)
    for seconds, expected in ((0.0, 0), (0.7, 1)):
        caplog.clear()
        source = GeneratedSource(num_frames=2, size=(64, 48), frames=pattern_frames)
        with caplog.at_level("WARNING", logger="pose_stream.pipeline.pipeline"):
            Pipeline(Slow(seconds), [source], [CollectSink()]).run()
        said = [r for r in caplog.records if "still starting after" in r.getMessage()]
        assert len(said) == expected, (seconds, [r.getMessage() for r in caplog.records])
