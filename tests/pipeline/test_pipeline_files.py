"""File sources through the whole pipeline: every frame once and in order, outputs, failures, shutdown."""
from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest

from pipeline_fakes import CollectSink, FakeEstimator, TinyTorchEstimator, decode_all, digest, expected_poses, pipeline_threads
from pose_stream.errors import PoseStreamError
from pose_stream.pipeline.sources.demo import pattern_frames
from pose_stream.pipeline import (
    CocoResultsSink, GeneratedSource, JsonLinesSink, Pipeline, PipelineConfig, PipelineError, SourceState,
    VideoSink, open_source,
)


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads still running after the pipeline stopped: {leaked}"
    assert not pipeline_threads()


def test_video_every_frame_once_in_order_with_outputs(video_file, tmp_path):
    estimator = FakeEstimator()
    collect = CollectSink()
    jsonl, saved = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    source = open_source(str(video_file))
    stats = Pipeline(estimator, [source], [collect, JsonLinesSink(jsonl), VideoSink(saved)]).run()

    reference = decode_all(video_file)
    assert len(reference) == 24
    assert estimator.digests == [digest(f) for f in reference]  # each frame once, in order
    assert [r.frame.seq for r in collect.results] == list(range(24))
    assert [r.frame.index for r in collect.results] == list(range(24))
    assert stats.frames == 24 and stats.input_drops == [0] and stats.discarded == 0
    assert source.status.state is SourceState.ENDED

    lines = jsonl.read_text().splitlines()
    assert len(lines) == 24
    records = [json.loads(line) for line in lines]
    assert [r["frame_index"] for r in records] == list(range(24))
    for record, frame in zip(records, reference):
        want = expected_poses(frame.shape, float(frame.mean()))
        assert record["source"] == str(video_file) and record["source_state"] in ("streaming", "ended")
        assert record["joint_set"] == "coco" and len(record["people"]) == 1
        np.testing.assert_allclose(record["people"][0]["keypoints"], want.keypoints[0], atol=2e-3)
        assert record["timestamps"]["done"] >= record["timestamps"]["captured"] > 0
        assert record["timestamps"]["latency_ms"] >= 0

    written = decode_all(saved)
    assert len(written) == 24 and written[0].shape == reference[0].shape
    cap = cv2.VideoCapture(str(saved))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(20.0)
    cap.release()
    # Skeletons were drawn: the saved frames differ from the input beyond compression noise.
    assert np.abs(written[5].astype(int) - reference[5].astype(int)).max() > 100


def test_image_folder_in_order_with_coco_results(image_folder, tmp_path):
    estimator = FakeEstimator()
    collect = CollectSink()
    out = tmp_path / "results.json"
    source = open_source(str(image_folder))
    Pipeline(estimator, [source], [collect, CocoResultsSink(out)]).run()

    images = [cv2.imread(str(p)) for p in source.paths]
    assert estimator.digests == [digest(im) for im in images]
    assert [r.frame.name for r in collect.results] == [p.name for p in source.paths]
    results = json.loads(out.read_text())
    assert [r["image_id"] for r in results] == [1000 + 7 * i for i in range(6)]
    for result, image in zip(results, images):
        want = expected_poses(image.shape, float(image.mean()))
        assert result["category_id"] == 1 and len(result["keypoints"]) == 17 * 3
        np.testing.assert_allclose(result["keypoints"], want.keypoints[0].reshape(-1), atol=2e-3)
        assert result["score"] == pytest.approx(float(want.scores[0]), abs=1e-4)


def test_coco_results_refuse_video_sources(video_file, tmp_path):
    estimator = FakeEstimator()
    with pytest.raises(PoseStreamError, match="needs image files"):
        Pipeline(estimator, [open_source(str(video_file))], [CocoResultsSink(tmp_path / "r.json")]).run()
    assert estimator.closed and not (tmp_path / "r.json").exists()


def test_max_frames_is_exact(video_file):
    collect = CollectSink()
    stats = Pipeline(FakeEstimator(), [open_source(str(video_file))], [collect], PipelineConfig(max_frames=7)).run()
    assert [r.frame.index for r in collect.results] == list(range(7)) and stats.frames == 7


def test_two_sources_each_kept_complete_and_in_order(video_file, image_folder):
    collect = CollectSink()
    sources = [open_source(str(video_file)), open_source(str(image_folder))]
    stats = Pipeline(FakeEstimator(), sources, [collect]).run()
    for i, count in enumerate((24, 6)):
        assert [r.frame.seq for r in collect.results if r.frame.source_index == i] == list(range(count))
    assert stats.frames_per_source == [24, 6]


def test_one_thread_creates_uses_and_closes_the_backend(video_file):
    estimator = FakeEstimator()
    ready = []
    Pipeline(estimator, [open_source(str(video_file))], [CollectSink()],
             on_backend_ready=lambda info: ready.append((info, threading.get_ident()))).run()
    assert estimator.backend_thread is not None and estimator.backend_thread != threading.get_ident()
    assert estimator.close_thread == estimator.backend_thread and estimator.closed
    assert ready == [("fake on cpu (fp32)", estimator.backend_thread)]


def test_aggregate_can_run_in_the_inference_thread(video_file):
    collect = CollectSink()
    stats = Pipeline(FakeEstimator(), [open_source(str(video_file))], [collect],
                     PipelineConfig(aggregate_in_infer_thread=True)).run()
    assert stats.frames == 24 and stats.stage_seconds["aggregate"].count == 24


def test_a_torch_backend_lives_in_the_inference_thread(video_file):
    """A real network behind the stage interface: created, used and closed in one thread, not the caller's."""
    estimator = TinyTorchEstimator()
    collect = CollectSink()
    stats = Pipeline(estimator, [open_source(str(video_file))], [collect]).run()
    assert stats.frames == 24 and estimator.backend_thread not in (None, threading.get_ident())
    assert estimator.close_thread == estimator.backend_thread
    assert stats.backend.startswith("torch on cpu")
    keypoints = np.stack([r.poses.keypoints[0] for r in collect.results])
    assert keypoints.shape == (24, 17, 3)
    assert (keypoints[..., 0] >= 0).all() and (keypoints[..., 0] <= 160).all() and (keypoints[..., 1] <= 120).all()


@pytest.mark.parametrize("stage", ["prepare", "infer", "aggregate", "group"])
def test_a_failing_stage_stops_everything_with_a_clear_error(stage):
    estimator = FakeEstimator(fail_at=(stage, 5))
    collect = CollectSink()
    started = time.monotonic()
    with pytest.raises(PipelineError, match=f"injected failure in {stage}") as err:
        Pipeline(estimator, [GeneratedSource(num_frames=10_000, size=(64, 48), frames=pattern_frames)], [collect]).run()
    assert time.monotonic() - started < 3.0
    assert ("infer" if stage == "prepare" else stage) in str(err.value)
    assert collect.closed and len(collect.results) < 5
    assert estimator.closed and estimator.close_thread == estimator.backend_thread


def test_domain_errors_from_a_stage_are_raised_unchanged():
    estimator = FakeEstimator(fail_at=("infer", 1), fail_with=PoseStreamError)
    with pytest.raises(PoseStreamError, match="injected failure in infer") as err:
        Pipeline(estimator, [GeneratedSource(num_frames=100, size=(64, 48), frames=pattern_frames)]).run()
    assert not isinstance(err.value, PipelineError)


def test_a_failing_sink_stops_the_pipeline():
    class Broken(CollectSink):
        def write(self, result):
            raise OSError("disk full")

    with pytest.raises(PipelineError, match="output stage failed: OSError: disk full"):
        Pipeline(FakeEstimator(), [GeneratedSource(num_frames=1000, size=(64, 48), frames=pattern_frames)], [Broken()]).run()


def test_a_strict_source_failing_mid_run_stops_with_its_message(tmp_path, image_folder):
    paths = sorted(image_folder.glob("*.png"))
    paths[3].write_bytes(b"not a png")
    with pytest.raises(PoseStreamError, match="cannot read image .*--strict"):
        Pipeline(FakeEstimator(), [open_source(str(image_folder), strict=True)], [CollectSink()]).run()


def test_an_unreadable_image_is_skipped_counted_and_the_run_goes_on(tmp_path, image_folder, caplog):
    paths = sorted(image_folder.glob("*.png"))
    paths[1].write_bytes(b"not a png")
    paths[4].write_bytes(paths[4].read_bytes()[:40])  # truncated
    collect = CollectSink()
    stats = Pipeline(FakeEstimator(), [open_source(str(image_folder))], [collect]).run()
    assert [r.frame.name for r in collect.results] == [p.name for i, p in enumerate(paths) if i not in (1, 4)]
    assert stats.frames == 4 and stats.source_status[0]["skipped"] == 2
    assert "skipped 2 unreadable" in stats.format_summary()
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(skipped) == 2 and paths[1].name in skipped[0] and "\n" not in skipped[0]


def test_a_folder_where_no_image_reads_fails(tmp_path, image_folder):
    for path in image_folder.glob("*.png"):
        path.write_bytes(b"junk")
    with pytest.raises(PoseStreamError, match="none of the 6 images"):
        Pipeline(FakeEstimator(), [open_source(str(image_folder))], [CollectSink()]).run()


def test_stop_drains_frames_in_flight_and_finalises_files(tmp_path):
    estimator = FakeEstimator(delays={"infer": 0.01, "group": 0.01})
    jsonl, saved = tmp_path / "out.jsonl", tmp_path / "out.mp4"

    class StopAt(CollectSink):
        def start(self, context):
            self.request_stop = context.request_stop

        def write(self, result):
            super().write(result)
            if len(self.results) == 10:
                self.request_stop()

    collect = StopAt()
    pipeline = Pipeline(estimator, [GeneratedSource(num_frames=10_000, size=(96, 64), frames=pattern_frames)],
                        [collect, JsonLinesSink(jsonl), VideoSink(saved)])
    stats = pipeline.run()
    assert 10 <= stats.frames < 30
    assert stats.discarded == 0  # everything captured was processed
    assert [r.frame.seq for r in collect.results] == list(range(stats.frames))
    assert len(jsonl.read_text().splitlines()) == stats.frames
    assert len(decode_all(saved)) == stats.frames


def test_stop_gives_up_on_slow_frames_after_the_drain_timeout():
    estimator = FakeEstimator(delays={"infer": 0.4})
    pipeline = Pipeline(estimator, [GeneratedSource(num_frames=1000, size=(64, 48), frames=pattern_frames)], [CollectSink()],
                        PipelineConfig(drain_timeout=0.3))
    threading.Timer(0.5, pipeline.stop).start()
    started = time.monotonic()
    stats = pipeline.run()
    assert time.monotonic() - started < 0.5 + 0.3 + 0.5 + 0.3
    assert stats.discarded >= 0 and estimator.closed


@pytest.mark.slow
def test_memory_is_flat_over_a_long_run(tmp_path):
    """A short version of benchmarks/memory_soak.py: RSS after warm-up grows < 5% over 1500 frames."""
    from pose_stream.pipeline.stats import rss_bytes

    marks = {}

    class Probe(CollectSink):
        def write(self, result):
            n = result.frame.seq
            if n in (300, 1499):
                marks[n] = rss_bytes()

    Pipeline(FakeEstimator(), [GeneratedSource(num_frames=1500, size=(320, 240), frames=pattern_frames)],
             [Probe(), VideoSink(tmp_path / "soak.mp4"), JsonLinesSink(tmp_path / "soak.jsonl")]).run()
    growth = (marks[1499] - marks[300]) / marks[300]
    assert growth < 0.05, f"RSS grew {growth:.1%}"
