"""Both trackers on people whose identities are known: ids stay, new people get new ids, fragments get none."""
import numpy as np
import pytest

from pose_stream.joints import COCO
from pose_stream.poses import Poses
from pose_stream.tracking import TRACKERS, Follower, TrackingConfig
from pose_stream.tracking.base import UNTRACKED
from tracking_people import frame, person, walkers

SIGMAS = np.asarray(COCO.sigmas)
FPS = 25.0


def follow(tracker: str, frames: list[Poses], **config) -> list[np.ndarray]:
    follower = Follower(TrackingConfig(tracker=tracker, **config), None, SIGMAS, FPS)
    return [follower(poses, t / FPS).track_ids for t, poses in enumerate(frames)]


def identities(ids: list[np.ndarray], who: list[list[int]]) -> dict[int, set[int]]:
    """walker -> the track ids it was given (confirmed ones)."""
    seen: dict[int, set[int]] = {}
    for frame_ids, order in zip(ids, who):
        for track, walker in zip(frame_ids.tolist(), order):
            if track != UNTRACKED:
                seen.setdefault(walker, set()).add(track)
    return seen


@pytest.mark.parametrize("tracker", TRACKERS)
def test_walkers_keep_their_ids_and_ids_count_from_one(tracker, rng):
    frames, who = walkers([(100, 400, 200, 3), (400, 380, 180, -2), (700, 300, 120, 1)], 60, rng)
    ids = follow(tracker, frames)
    confirm = TrackingConfig().confirm_frames
    assert all((frame_ids == UNTRACKED).all() for frame_ids in ids[:confirm - 1])  # not confirmed yet
    assert all((frame_ids != UNTRACKED).all() for frame_ids in ids[confirm:])
    seen = identities(ids, who)
    assert sorted(len(v) for v in seen.values()) == [1, 1, 1]
    assert set().union(*seen.values()) == {1, 2, 3}


@pytest.mark.parametrize("tracker", TRACKERS)
def test_people_crossing_at_different_depths_keep_their_ids(tracker, rng):
    # a near person walks right past a far, smaller one walking left: they overlap for several frames
    frames, who = walkers([(100, 450, 260, 8), (600, 330, 150, -8)], 70, rng)
    seen = identities(follow(tracker, frames), who)
    assert [len(seen[0]), len(seen[1])] == [1, 1] and seen[0] != seen[1]


@pytest.mark.parametrize("tracker", TRACKERS)
def test_a_fragment_seen_once_never_gets_an_id(tracker, rng):
    frames = []
    for t in range(20):
        people = [person(200 + 2 * t, 400, 200)]
        if t == 10:  # three stray joints elsewhere, one frame
            stray = person(600, 300, 150, value=0.0)
            stray[:3, 2] = 0.5
            people.append(stray)
        frames.append(frame(people, rng))
    ids = follow(tracker, frames)
    assert ids[10][1] == UNTRACKED
    assert {int(i[0]) for i in ids[2:]} == {1}


@pytest.mark.parametrize("tracker", TRACKERS)
@pytest.mark.parametrize("gap, same", [(5, True), (60, False)])
def test_someone_hidden_briefly_keeps_their_id(tracker, gap, same, rng):
    frames = []
    for t in range(30 + gap + 10):
        hidden = 30 <= t < 30 + gap
        people = [person(300, 400, 200)] + ([] if hidden else [person(100 + t, 380, 180)])
        frames.append(frame(people, rng))
    ids = follow(tracker, frames, keep_lost_seconds=1.0)
    before, after = int(ids[29][1]), int(ids[-1][1])
    assert before != UNTRACKED and after != UNTRACKED
    assert (before == after) is same
    assert {int(i[0]) for i in ids[2:]} == {int(ids[2][0])}  # the one standing still is never disturbed


@pytest.mark.parametrize("tracker", TRACKERS)
def test_empty_frames_and_separate_sources(tracker, rng):
    a = Follower(TrackingConfig(tracker=tracker), None, SIGMAS, FPS)
    b = Follower(TrackingConfig(tracker=tracker), None, SIGMAS, FPS)
    assert len(a(Poses.empty(), 0.0).track_ids) == 0
    for t in range(3):
        ids_a = a(frame([person(100, 400, 200)], rng), (t + 1) / FPS).track_ids
        ids_b = b(frame([person(300, 400, 200), person(600, 400, 200)], rng), t / FPS).track_ids
    assert ids_a.tolist() == [1] and sorted(ids_b.tolist()) == [1, 2]  # each source counts from 1
