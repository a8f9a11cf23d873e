"""Tracking with `norfair`: each joint of each person followed by a Kalman filter, people associated by OKS."""
from __future__ import annotations

import numpy as np

from pose_stream.oks import joint_box_area, joint_similarities
from pose_stream.poses import Poses
from pose_stream.tracking.base import PoseTracker
from pose_stream.tracking.config import TrackingConfig


class NorfairPoseTracker(PoseTracker):
    """Distance between a person and a track: 1 - OKS of the person's joints with the track's predicted joints
    (area: the person's joint box), the per-joint similarities summed over joints found in both (the person, and the track's last match) and
    divided by the joints found in either: a fragment of three joints lying on a whole person's track is a poor match for it,
    not a perfect one. A person continues the nearest track below 1 - min_similarity."""

    def __init__(self, config: TrackingConfig, sigmas: np.ndarray, fps: float) -> None:
        super().__init__(config, sigmas, fps)
        from norfair import Tracker

        # norfair calls the distance once per (person, track) pair from Python; all pairs of a frame are
        # computed in one vectorised OKS instead and looked up (see _distance).
        self._tracker = Tracker(
            distance_function=self._distance,
            distance_threshold=1.0 - config.min_similarity,
            hit_counter_max=self.lost_frames,
            initialization_delay=config.confirm_frames - 1,
            detection_threshold=config.min_joint,
            pointwise_hit_counter_max=4,
        )
        self._detections: list = []
        self._distances: dict[int, np.ndarray] = {}  # id(tracked object) -> (N,) distance to each person

    def _update(self, poses: Poses) -> list[int | None]:
        from norfair import Detection

        used = self.used_joints(poses)
        self._detections = [Detection(points=person[:, :2].astype(np.float64), scores=person[:, 2].astype(np.float64),
                                      data=n) for n, person in enumerate(poses.keypoints)]
        self._used, self._areas = used, joint_box_area(poses.keypoints, used)
        self._distances = {}
        active = self._tracker.update(self._detections)
        ids: list[int | None] = [None] * len(poses)
        for tracked in active:
            detection = tracked.last_detection
            if detection.data is not None and detection.data < len(ids) and detection is self._detections[detection.data]:
                ids[detection.data] = tracked.id
        return ids

    def _distance(self, detection, tracked) -> float:
        distances = self._distances.get(id(tracked))
        if distances is None:
            self._fill_distances()
            distances = self._distances[id(tracked)]
        return float(distances[detection.data])

    def _fill_distances(self) -> None:
        """1 - OKS of every person of the frame with every track's current (predicted) estimate."""
        tracks = self._tracker.tracked_objects
        estimates = np.stack([t.estimate for t in tracks]) if tracks else np.zeros((0,) + self._used.shape[1:] + (2,))
        people = np.stack([d.points for d in self._detections])
        # each person is the reference: its found joints and its size
        live = np.stack([t.last_detection.scores >= self.config.min_joint for t in tracks]) if tracks else np.zeros((0, self._used.shape[1]), bool)
        per_joint = joint_similarities(estimates, people, self.sigmas, self._areas)     # (T, N, K)
        both = live[:, None, :] & self._used[None]
        either = (live[:, None, :] | self._used[None]).sum(axis=-1)
        similarity = (per_joint * both).sum(axis=-1) / np.maximum(either, 1)           # (T, N)
        self._distances = {id(t): 1.0 - similarity[i] for i, t in enumerate(tracks)}
