"""Tracking with `norfair` (the maintained `norfair-enough` release): each joint of each person followed by a
Kalman filter, people associated by keypoint similarity."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pose_stream.oks import joint_box_area, joint_similarities
from pose_stream.poses import Poses
from pose_stream.tracking.base import PoseTracker
from pose_stream.tracking.config import TrackingConfig


class NorfairPoseTracker(PoseTracker):
    """A person continues the track whose keypoint similarity with them is highest, if at least min_similarity
    (norfair matches greedily by distance = 1 - similarity; see `keypoint_similarity`)."""

    def __init__(self, config: TrackingConfig, sigmas: np.ndarray, fps: float) -> None:
        super().__init__(config, sigmas, fps)
        from norfair import Tracker

        hits = max(self.lost_frames, config.confirm_frames)
        self._tracker = Tracker(
            distance_function="euclidean",  # replaced below: norfair takes names or per-pair functions only
            distance_threshold=1.0 - config.min_similarity,
            hit_counter_max=hits,
            initialization_delay=min(config.confirm_frames - 1, hits - 1),
            detection_threshold=config.min_joint,
            pointwise_hit_counter_max=4,
        )
        # norfair's Distance interface: the whole (people x tracks) matrix of a frame in one call
        self._tracker.distance_function = _similarity_distance(self.sigmas, config.min_joint)
        self._frame = 0

    def _update(self, poses: Poses) -> list[int | None]:
        from norfair import Detection

        self._frame += 1
        # data: (frame, person) - a track's last detection is this frame's only if it was matched in this frame
        detections = [Detection(points=person[:, :2].astype(np.float64), scores=person[:, 2].astype(np.float64),
                                data=(self._frame, n)) for n, person in enumerate(poses.keypoints)]
        ids: list[int | None] = [None] * len(poses)
        for tracked in self._tracker.update(detections):
            frame, n = tracked.last_detection.data
            if frame == self._frame:
                ids[n] = tracked.id
        return ids


def keypoint_similarity(people: np.ndarray, found: np.ndarray, tracks: np.ndarray, seen: np.ndarray,
                        sigmas: np.ndarray) -> np.ndarray:
    """(N, K, 2) people with (N, K) found joints, (T, K, 2) track positions with (T, K) joints seen at their last
    match -> (N, T) similarity in [0, 1].

    OKS's per-joint terms (area: the person's joint box) summed over the joints found in both and divided by the
    joints found in either: a fragment of three joints lying on a whole person's track is a poor match for it,
    not the perfect one plain OKS (a mean over the fragment's own joints) would make it.
    """
    per_joint = joint_similarities(tracks, people, sigmas, joint_box_area(people, found))  # (T, N, K)
    both = seen[:, None, :] & found[None]
    either = (seen[:, None, :] | found[None]).sum(axis=-1)
    return ((per_joint * both).sum(axis=-1) / np.maximum(either, 1)).T


def _similarity_distance(sigmas: np.ndarray, min_joint: float):
    from norfair.distances import Distance

    class SimilarityDistance(Distance):
        def get_distances(self, objects: Sequence, candidates: Sequence | None) -> np.ndarray:
            """(candidates, objects) matrix of 1 - keypoint_similarity."""
            if not objects or not candidates:
                return np.full((len(candidates or ()), len(objects)), np.inf)
            people = np.stack([c.points for c in candidates])
            found = np.stack([c.scores >= min_joint for c in candidates])
            tracks = np.stack([o.estimate for o in objects])
            seen = np.stack([o.last_detection.scores >= min_joint for o in objects])
            return 1.0 - keypoint_similarity(people, found, tracks, seen, sigmas)

    return SimilarityDistance()
