"""Smoothing per tracked person: filters follow track ids, untracked people are left alone, steadier output."""
import numpy as np

from pose_stream.joints import COCO
from pose_stream.tracking import Follower, SmoothingConfig, TrackingConfig
from pose_stream.tracking.one_euro import OneEuroFilter
from pose_stream.tracking.smoothing import PoseSmoother
from tracking_people import frame, person

FPS = 25.0


def test_each_track_has_its_own_filter_and_untracked_people_pass_through(rng):
    config = SmoothingConfig(min_cutoff=0.5, beta=0.0)
    smoother = PoseSmoother(config, 1 / FPS)
    a, b = person(100, 400, 200), person(500, 400, 200)
    noisy = [np.stack([a, b, a]) + np.concatenate([rng.normal(0, 3, (3, 17, 2)), np.zeros((3, 17, 1))], axis=2)
             for _ in range(10)]
    filters = {track: OneEuroFilter(config, noisy[0][n, :, :2], 0.0, 1 / FPS) for n, track in ((0, 7), (1, 3))}
    for t, keypoints in enumerate(noisy):
        # the listing order changes between frames: filters follow ids, not positions in the list
        order = [1, 0, 2] if t % 2 else [0, 1, 2]
        ids = np.array([7, 3, -1])[order]
        out = smoother(keypoints[order].astype(np.float32), ids, t / FPS)
        np.testing.assert_array_equal(out[order.index(2)], keypoints[2].astype(np.float32))  # untracked: as found
        for n, track in ((0, 7), (1, 3)):
            expected = keypoints[n, :, :2] if t == 0 else filters[track](keypoints[n, :, :2], t / FPS)
            np.testing.assert_allclose(out[order.index(n), :, :2], expected, atol=1e-3)
            np.testing.assert_array_equal(out[order.index(n), :, 2], keypoints[n, :, 2].astype(np.float32))


def test_a_track_that_comes_back_starts_afresh():
    smoother = PoseSmoother(SmoothingConfig(), 1 / FPS)
    here, there = person(100, 400, 200)[None], person(600, 400, 200)[None]
    smoother(here, np.array([1]), 0.0)
    smoother(here, np.array([1]), 0.04)
    smoother(np.zeros((0, 17, 3), np.float32), np.zeros(0, np.int64), 0.08)  # not in this frame
    out = smoother(there, np.array([1]), 0.12)
    np.testing.assert_array_equal(out, there)  # not pulled back towards where it was


def test_smoothing_makes_still_people_steadier(rng):
    follower_raw = Follower(TrackingConfig(), None, np.asarray(COCO.sigmas), FPS)
    follower_smooth = Follower(TrackingConfig(), SmoothingConfig(), np.asarray(COCO.sigmas), FPS)
    raw, smooth = [], []
    for t in range(100):
        poses = frame([person(300, 400, 200)], rng, noise=2.0)
        raw.append(follower_raw(poses, t / FPS).keypoints[0, :, :2])
        smooth.append(follower_smooth(poses, t / FPS).keypoints[0, :, :2])
    jitter = [np.sqrt((np.diff(np.array(x)[20:], axis=0) ** 2).sum(-1).mean()) for x in (raw, smooth)]
    assert jitter[1] < 0.4 * jitter[0]
