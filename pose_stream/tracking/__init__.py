"""Who is who across frames, and steadier joints: per-source person tracking and One-Euro smoothing.

    Poses of one frame --PoseTracker.update--> track ids --PoseSmoother--> steadier keypoints

`follow.Follower` runs both for one source; the pipeline keeps one per video source. May import: numpy,
norfair, trackers (with supervision), and pose_stream.{poses, oks}; not pipeline/ or the estimators.
"""
from pose_stream.tracking.config import TRACKERS, SmoothingConfig, TrackingConfig
from pose_stream.tracking.follow import Follower, load_tracker_library

__all__ = ["TRACKERS", "Follower", "SmoothingConfig", "TrackingConfig", "load_tracker_library"]
