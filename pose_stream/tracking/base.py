"""What every person tracker does, whichever library does the association."""
from __future__ import annotations

import abc

import numpy as np

from pose_stream.poses import Poses
from pose_stream.tracking.config import TrackingConfig

UNTRACKED = -1  # the track id of a person the tracker has not confirmed (None in the JSON outputs)


class PoseTracker(abc.ABC):
    """Follows the people of one source from frame to frame.

    Args:
        config: tracking settings.
        sigmas: (K,) the joint set's OKS falloffs.
        fps: the source's frame rate (how many frames `keep_lost_seconds` is).
    """

    def __init__(self, config: TrackingConfig, sigmas: np.ndarray, fps: float) -> None:
        self.config = config
        self.sigmas = np.asarray(sigmas, np.float64)
        self.fps = fps
        self._ids: dict[int, int] = {}  # the library's track id -> ours (1, 2, 3, ... per source)

    @property
    def lost_frames(self) -> int:
        return max(1, round(self.config.keep_lost_seconds * self.fps))

    def update(self, poses: Poses) -> np.ndarray:
        """The next frame's people -> (N,) int64 track ids, UNTRACKED for people not (yet) confirmed."""
        library_ids = self._update(poses)
        ids = np.full(len(poses), UNTRACKED, np.int64)
        for n, library_id in enumerate(library_ids):
            if library_id is not None and library_id >= 0:
                ids[n] = self._ids.setdefault(int(library_id), len(self._ids) + 1)
        return ids

    @abc.abstractmethod
    def _update(self, poses: Poses) -> list[int | None]:
        """The library's track id of each person of the frame (None or negative: not confirmed)."""

    def used_joints(self, poses: Poses) -> np.ndarray:
        """(N, K) bool: the joints found well enough to take part in association."""
        return poses.keypoints[:, :, 2] >= self.config.min_joint
