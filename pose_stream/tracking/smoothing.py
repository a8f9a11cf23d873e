"""Steadier joints: a One-Euro filter per tracked person, over all of their joints at once."""
from __future__ import annotations

import numpy as np

from pose_stream.tracking.config import SmoothingConfig
from pose_stream.tracking.one_euro import OneEuroFilter


class PoseSmoother:
    """Smooths the x, y of each tracked person's joints over time (joint values are left as they are).

    A person's filter starts with their first tracked frame and is dropped in the first frame they are not in
    (when they come back they start afresh instead of being pulled towards where they were).

    Args:
        config: the filter's parameters.
        period: seconds between frames, used until timestamps say otherwise.
    """

    def __init__(self, config: SmoothingConfig, period: float) -> None:
        self.config = config
        self.period = period
        self._filters: dict[int, OneEuroFilter] = {}

    def __call__(self, keypoints: np.ndarray, track_ids: np.ndarray, timestamp: float) -> np.ndarray:
        """(N, K, 3) keypoints and (N,) track ids (negative: not tracked, left as they are) -> smoothed copy."""
        out = keypoints.copy()
        filters: dict[int, OneEuroFilter] = {}
        for n, track in enumerate(track_ids.tolist()):
            if track < 0:
                continue
            previous = self._filters.get(track)
            if previous is None:
                filters[track] = OneEuroFilter(self.config, keypoints[n, :, :2], timestamp, self.period)
            else:
                out[n, :, :2] = previous(keypoints[n, :, :2], timestamp)
                filters[track] = previous
        self._filters = filters
        return out
