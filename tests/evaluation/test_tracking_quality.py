"""Tracking metrics on hand-made outputs whose right answers are known."""
import numpy as np
import pytest

from pose_stream.evaluation.tracking_quality import ClipFrame, identity_metrics, steadiness
from pose_stream.joints import COCO

pytest.importorskip("motmetrics", reason="motmetrics (test extra)")
SIGMAS = np.asarray(COCO.sigmas)


def _person(x: float, y: float = 300.0, height: float = 200.0) -> np.ndarray:
    k = np.arange(17)
    xy = np.stack([x + 40 * np.sin(k), y - height * k / 17], axis=1)
    return np.concatenate([xy, np.full((17, 1), 2.0)], axis=1)


def _clip(frames: int, track_ids=lambda t: [1, 2], outputs=lambda t, truth: truth, swap_every: int = 0):
    clip = []
    for t in range(frames):
        truth = np.stack([_person(100 + 2 * t), _person(500 - 2 * t)])
        clip.append(ClipFrame(truth, np.array([10, 20]), outputs(t, truth.copy()), np.array(track_ids(t))))
    return clip


def test_perfect_tracks():
    metrics = identity_metrics(_clip(50), SIGMAS)
    assert metrics["idf1"] == 1.0 and metrics["mota"] == 1.0 and metrics["id_switches"] == 0
    assert metrics["frames"] == 50 and metrics["identities"] == 2


def test_one_swap_half_way_is_two_switches():
    metrics = identity_metrics(_clip(50, track_ids=lambda t: [1, 2] if t < 25 else [2, 1]), SIGMAS)
    assert metrics["id_switches"] == 2 and metrics["id_switches_per_100_frames"] == 4.0
    assert metrics["idf1"] == pytest.approx(0.5)


def test_untracked_people_count_as_misses_not_as_hypotheses():
    metrics = identity_metrics(_clip(10, track_ids=lambda t: [1, -1]), SIGMAS)
    assert metrics["misses"] == 10 and metrics["false_positives"] == 0


def test_jitter_is_motion_error_and_lag_is_found(rng):
    noisy = _clip(80, outputs=lambda t, truth: truth + np.concatenate(
        [rng.normal(0, 1.0, truth[:, :, :2].shape), np.zeros(truth[:, :, 2:].shape)], axis=2))
    result = steadiness(noisy, SIGMAS)
    # motion error of independent noise with sigma 1 per coordinate: RMS of |n_t - n_t-1| = sqrt(2 * 2)
    assert result["jitter_px"] == pytest.approx(2.0, rel=0.1)
    assert result["lag_frames"] == pytest.approx(0.0, abs=0.1)

    def delayed(t, truth):  # the output shows where people were 2 frames ago
        return np.stack([_person(100 + 2 * (t - 2)), _person(500 - 2 * (t - 2))])

    result = steadiness(_clip(80, outputs=delayed), SIGMAS)
    assert result["lag_frames"] == pytest.approx(2.0, abs=0.05)
    assert result["jitter_px"] == pytest.approx(0.0, abs=1e-9)


def test_people_with_few_visible_joints_are_dont_care():
    clip = _clip(10)
    for frame in clip:
        frame.truth[1, 3:, 2] = 0  # the second person shows 3 joints: not expected, not a false positive
    metrics = identity_metrics(clip, SIGMAS)
    assert metrics["misses"] == 0 and metrics["false_positives"] == 0 and metrics["identities"] == 1
    assert metrics["idf1"] == 1.0
