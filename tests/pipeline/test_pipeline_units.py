"""Building blocks of the pipeline: source parsing, masking, backoff, the frame mux, statistics, drawing."""
from __future__ import annotations

import logging
import random
import threading
import time

import cv2
import numpy as np
import pytest

from pipeline_fakes import expected_poses
from pose_stream.errors import PoseStreamError
from pose_stream.joints import COCO
from pose_stream.pipeline import (
    GeneratedSource, ImageSequenceSource, LiveOptions, LiveSource, ReconnectPolicy, VideoFileSource, draw_poses,
    mask_credentials, open_source,
)
from pose_stream.pipeline.channels import END, Aborted, FrameMux
from pose_stream.pipeline.frames import Frame
from pose_stream.pipeline.sinks import image_ids
from pose_stream.pipeline.sources.base import SourceState, SourceStatus
from pose_stream.pipeline.stats import RollingSamples
from pose_stream.poses import Poses


@pytest.mark.parametrize("text, expected", [
    ("rtsp://admin:s3cr3t@10.0.0.7:554/stream1", "rtsp://***@10.0.0.7:554/stream1"),
    ("rtsp://admin@cam/live", "rtsp://***@cam/live"),
    ("open https://u:p%40ss@host/x and rtsp://a:b@c/d", "open https://***@host/x and rtsp://***@c/d"),
    ("rtsp://10.0.0.7:554/stream1", "rtsp://10.0.0.7:554/stream1"),
    ("/videos/a@b.mp4", "/videos/a@b.mp4"),
])
def test_mask_credentials(text, expected):
    assert mask_credentials(text) == expected


def test_source_id_and_logs_never_show_credentials(caplog):
    source = LiveSource("rtsp://admin:s3cr3t@127.0.0.1:9/x",
                        LiveOptions(timeout=0.5, reconnect=ReconnectPolicy(initial_delay=0.01, max_attempts=2)))
    assert "s3cr3t" not in source.source_id and "***@" in source.source_id
    with caplog.at_level(logging.DEBUG), pytest.raises(PoseStreamError) as err:
        list(source.images(threading.Event()))
    assert "s3cr3t" not in str(err.value) and "after 2 attempts" in str(err.value)
    assert caplog.records and not any("s3cr3t" in r.getMessage() for r in caplog.records)


def test_open_source_kinds(video_file, image_folder, tmp_path):
    assert isinstance(open_source("demo"), GeneratedSource)
    cam = open_source("webcam")
    assert isinstance(cam, LiveSource) and cam.target == 0 and cam.live
    assert open_source("2").target == 2
    assert open_source("rtsp://cam/live").target == "rtsp://cam/live"
    assert open_source("https://cam/mjpg").live
    video = open_source(str(video_file))
    assert isinstance(video, VideoFileSource) and not video.live
    folder = open_source(str(image_folder))
    assert isinstance(folder, ImageSequenceSource) and len(folder.paths) == 6
    assert [p.name for p in folder.paths] == sorted(p.name for p in folder.paths)
    single = open_source(str(folder.paths[2]))
    assert isinstance(single, ImageSequenceSource) and single.paths == [folder.paths[2]]
    globbed = open_source(str(image_folder / "*.png"))
    assert globbed.paths == folder.paths


@pytest.mark.parametrize("make, message", [
    (lambda d: str(d / "missing.mp4"), "file not found"),
    (lambda d: "camera-one", "unknown source"),
    (lambda d: "ftp://host/x.mp4", "unsupported stream"),
    (lambda d: str(d), "has no images"),
    (lambda d: str(d / "*.jpg"), "matches no image files"),
])
def test_open_source_errors(tmp_path, make, message):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(PoseStreamError, match=message):
        open_source(make(tmp_path))


def test_corrupt_video_is_rejected_by_check(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(random.Random(0).randbytes(4000)))
    with pytest.raises(PoseStreamError, match="cannot read video"):
        open_source(str(bad)).check()


def test_reconnect_policy_is_capped_exponential_with_jitter():
    policy = ReconnectPolicy(initial_delay=0.1, max_delay=1.0, factor=2.0, jitter=0.5)
    rng = random.Random(1)
    for failures in range(1, 12):
        base = min(1.0, 0.1 * 2 ** (failures - 1))
        delays = [policy.delay(failures, rng) for _ in range(200)]
        assert base * 0.5 <= min(delays) and max(delays) <= base
        assert max(delays) - min(delays) > 0.3 * base  # jittered, not constant
    for bad in (dict(max_attempts=0), dict(jitter=1.0), dict(initial_delay=2.0, max_delay=1.0)):
        with pytest.raises(ValueError):
            ReconnectPolicy(**bad)
    with pytest.raises(ValueError):
        LiveOptions(transport="quic")
    assert LiveOptions(transport="udp").ffmpeg_options().startswith("rtsp_transport;udp")


def _frame(source: int, seq: int) -> Frame:
    return Frame(f"s{source}", source, seq, seq, np.zeros((2, 2, 3), np.uint8), time.monotonic(), time.time())


def test_mux_live_source_keeps_newest_and_counts_drops():
    stop, abort = threading.Event(), threading.Event()
    mux = FrameMux([True], depth=4, stop=stop, abort=abort)
    for seq in range(5):
        assert mux.put(0, _frame(0, seq))
    assert mux.get().seq == 4 and mux.drops == [4]
    mux.end(0)
    assert mux.get() is END


def test_mux_file_source_waits_for_room_and_loses_nothing():
    stop, abort = threading.Event(), threading.Event()
    mux = FrameMux([False], depth=2, stop=stop, abort=abort)
    got = []
    consumer = threading.Thread(target=lambda: got.extend(iter(mux.get, END)))
    consumer.start()
    for seq in range(50):
        assert mux.put(0, _frame(0, seq))
    mux.end(0)
    consumer.join(5)
    assert [f.seq for f in got] == list(range(50)) and mux.drops == [0] and max(mux.max_depth) <= 2


def test_mux_round_robin_limit_stop_and_abort():
    stop, abort = threading.Event(), threading.Event()
    mux = FrameMux([False, False], depth=3, stop=stop, abort=abort, limit=4)
    for seq in range(3):
        mux.put(0, _frame(0, seq))
        mux.put(1, _frame(1, seq))
    order = [(f.source_index, f.seq) for f in iter(mux.get, END)]
    assert order == [(0, 0), (1, 0), (0, 1), (1, 1)] and stop.is_set()
    assert not mux.put(0, _frame(0, 9))  # stopping: capture threads are told to end
    abort.set()
    with pytest.raises(Aborted):
        mux.get()


def test_mux_put_on_full_file_buffer_returns_when_stopped():
    stop, abort = threading.Event(), threading.Event()
    mux = FrameMux([False], depth=1, stop=stop, abort=abort)
    mux.put(0, _frame(0, 0))
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert not mux.put(0, _frame(0, 1))
    assert time.monotonic() - started < 1.0


def test_rolling_samples_match_numpy_on_the_recent_window():
    rng = np.random.default_rng(3)
    values = rng.exponential(0.02, 3000)
    samples = RollingSamples(capacity=1000)
    for v in values:
        samples.add(float(v))
    np.testing.assert_allclose(samples.percentiles((50, 95, 99)), np.percentile(values[-1000:], (50, 95, 99)))
    assert samples.count == 3000 and samples.mean == pytest.approx(values.mean())


def test_status_watchdog_reports_stalled_while_a_read_blocks():
    status = SourceStatus("cam", stall_timeout=0.1)
    status.set_state(SourceState.STREAMING)
    status.frame_read()
    assert status.state is SourceState.STREAMING
    time.sleep(0.15)
    assert status.state is SourceState.STALLED
    status.frame_read()
    assert status.state is SourceState.STREAMING


def test_image_ids_from_names_or_positions():
    assert image_ids(["000000397133.jpg", "COCO_val2014_000000000042.jpg"]) == [397133, 42]
    assert image_ids(["a.jpg", "b.jpg"]) == [0, 1]
    assert image_ids(["img1.png", "x_1.png"]) == [0, 1]  # not distinct


def test_draw_poses_uses_joint_set_colours_and_skips_weak_joints():
    image = np.zeros((120, 160, 3), np.uint8)
    poses = expected_poses(image.shape, 40.0)
    keypoints = poses.keypoints.copy()
    keypoints[0, 3, 2] = 0.01  # left ear below the drawing threshold
    poses = Poses(keypoints, poses.scores, "coco")
    draw_poses(image, poses)
    for j in (0, 5, 6, 9):
        x, y = np.round(keypoints[0, j, :2]).astype(int)
        assert tuple(image[y, x]) == COCO.joint_color(j)
    x, y = np.round(keypoints[0, 3, :2]).astype(int)
    assert tuple(image[y, x]) != COCO.joint_color(3)
    empty = np.zeros_like(image)
    draw_poses(empty, Poses.empty())
    assert not empty.any()


def test_generated_source_yields_its_frames_in_order():
    source = GeneratedSource(num_frames=5, size=(96, 64))  # the animated synthetic scene
    frames = list(source.images(threading.Event()))
    assert [f.index for f in frames] == list(range(5))
    assert frames[0].image.shape == (64, 96, 3) and frames[0].image.dtype == np.uint8
    assert not np.array_equal(frames[0].image, frames[4].image)
    assert cv2.mean(frames[0].image)[0] > 0


def test_draw_poses_skips_low_scoring_fragments():
    image = np.zeros((120, 160, 3), np.uint8)
    poses = expected_poses(image.shape, 40.0)
    weak = Poses(poses.keypoints, np.full_like(poses.scores, 0.05), "coco")
    draw_poses(image, weak)
    assert not image.any()
    draw_poses(image, weak, min_score=0.0)
    assert image.any()


def test_tracked_people_are_labelled_with_their_track_id():
    from tracking_people import frame, person

    poses = frame([person(100, 300, 200), person(300, 300, 150)])
    canvas = np.zeros((360, 640, 3), np.uint8)
    plain = draw_poses(canvas.copy(), poses)
    untracked = draw_poses(canvas.copy(), poses.with_tracks(np.array([-1, -1])))
    labelled = draw_poses(canvas.copy(), poses.with_tracks(np.array([3, -1])))
    np.testing.assert_array_equal(plain, untracked)
    changed = np.argwhere((labelled != plain).any(axis=2))
    assert len(changed) and changed[:, 0].max() < 300 - 0.93 * 200 and changed[:, 1].max() < 200  # above person 0
