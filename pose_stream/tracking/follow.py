"""Tracking and smoothing for one source: what the pipeline applies to each frame's people."""
from __future__ import annotations

import numpy as np

from pose_stream.poses import Poses
from pose_stream.tracking.base import PoseTracker
from pose_stream.tracking.config import SmoothingConfig, TrackingConfig
from pose_stream.tracking.smoothing import PoseSmoother


def load_tracker_library(config: TrackingConfig) -> None:
    """Import the tracker's library now (norfair takes most of a second), not at a source's first frame; a
    missing one is a one-line error naming the extra that installs it."""
    from pose_stream._optional import require

    if config.tracker == "bytetrack":
        require("trackers", "--tracker bytetrack")
    else:
        import norfair  # noqa: F401 - a dependency of the base install


def make_tracker(config: TrackingConfig, sigmas: np.ndarray, fps: float) -> PoseTracker:
    if config.tracker == "bytetrack":
        from pose_stream.tracking.bytetrack_tracker import ByteTrackPoseTracker
        return ByteTrackPoseTracker(config, sigmas, fps)
    from pose_stream.tracking.norfair_tracker import NorfairPoseTracker
    return NorfairPoseTracker(config, sigmas, fps)


class Follower:
    """Gives each person of a source's frames a track id and, with smoothing, steadier joints.

    Args:
        tracking: how to track.
        smoothing: how to smooth (None: the keypoints are left as found).
        sigmas: (K,) the joint set's OKS falloffs.
        fps: the source's frame rate.
    """

    def __init__(self, tracking: TrackingConfig, smoothing: SmoothingConfig | None, sigmas: np.ndarray,
                 fps: float) -> None:
        if not fps > 0:
            raise ValueError("fps must be positive")
        self.fps = fps
        self.tracker = make_tracker(tracking, sigmas, fps)
        self.smoother = None if smoothing is None else PoseSmoother(smoothing, 1.0 / fps)

    def __call__(self, poses: Poses, timestamp: float) -> Poses:
        """The frame's people (in the source's order of frames), taken at `timestamp` seconds -> the same people
        with track ids and, with smoothing, smoothed positions."""
        ids = self.tracker.update(poses)
        keypoints = None if self.smoother is None else self.smoother(poses.keypoints, ids, timestamp)
        return poses.with_tracks(ids, keypoints)
