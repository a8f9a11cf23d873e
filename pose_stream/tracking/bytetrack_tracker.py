"""Tracking with roboflow `trackers` (ByteTrack): a box around each person's found joints, associated by IoU."""
from __future__ import annotations

import numpy as np

from pose_stream.poses import Poses
from pose_stream.tracking.base import PoseTracker
from pose_stream.tracking.config import TrackingConfig

BOX_MARGIN = 0.1  # the joints' box grows by this share of its size on each side (joints are not the outline)


class ByteTrackPoseTracker(PoseTracker):
    """ByteTrack over joint boxes, with person scores as confidences (low scores join existing tracks only)."""

    def __init__(self, config: TrackingConfig, sigmas: np.ndarray, fps: float) -> None:
        super().__init__(config, sigmas, fps)
        from pose_stream._optional import require

        ByteTrackTracker = require("trackers", "--tracker bytetrack").ByteTrackTracker

        # lost_track_buffer is in frames at 30 fps; the library scales it by frame_rate / 30
        self._tracker = ByteTrackTracker(
            lost_track_buffer=max(1, round(config.keep_lost_seconds * 30)), frame_rate=fps,
            track_activation_threshold=0.25, minimum_consecutive_frames=config.confirm_frames,
            minimum_iou_threshold=config.min_similarity, high_conf_det_threshold=0.4,
        )

    def _update(self, poses: Poses) -> list[int | None]:
        import supervision as sv

        boxes = joint_boxes(poses.keypoints, self.used_joints(poses))
        detections = sv.Detections(xyxy=boxes, confidence=poses.scores.astype(np.float32),
                                   data={"person": np.arange(len(poses))})
        tracked = self._tracker.update(detections)
        ids: list[int | None] = [None] * len(poses)
        if tracked.tracker_id is not None:
            for person, track in zip(tracked.data.get("person", []), tracked.tracker_id):
                ids[int(person)] = int(track)
        return ids


def joint_boxes(keypoints: np.ndarray, used: np.ndarray) -> np.ndarray:
    """(N, K, >=2) joints, (N, K) used -> (N, 4) x1, y1, x2, y2 around the used joints (all when none is),
    grown by BOX_MARGIN on each side."""
    boxes = np.zeros((len(keypoints), 4), np.float32)
    for n, (person, mask) in enumerate(zip(keypoints, used)):
        xy = person[mask if mask.any() else slice(None), :2]
        low, high = xy.min(axis=0), xy.max(axis=0)
        margin = BOX_MARGIN * (high - low) + 1.0
        boxes[n] = (*(low - margin), *(high + margin))
    return boxes
