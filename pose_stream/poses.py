"""The result type of pose estimation: the people found in one image."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Poses:
    """People found in one image.

    Attributes:
        keypoints: float32 (N, K, 3): x, y in image pixels and the joint's heatmap value, for N people and
            K joints (K = 17 for COCO, 14 for CrowdPose).
        scores: float32 (N,): person scores (mean joint value after adjust, as the reference computes it).
        joint_set: "coco" or "crowdpose".
        track_ids: int64 (N,) each person's identity across the frames of a source (from 1; -1 for a person
            the tracker has not confirmed), or None when nothing tracks people.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    joint_set: str = "coco"
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        sc = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if kp.ndim != 3 or kp.shape[2] != 3:
            raise ValueError(f"keypoints must have shape (N, K, 3), got {kp.shape}")
        if sc.shape[0] != kp.shape[0]:
            raise ValueError(f"{kp.shape[0]} people but {sc.shape[0]} scores")
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "scores", sc)
        if self.track_ids is not None:
            ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
            if ids.shape[0] != kp.shape[0]:
                raise ValueError(f"{kp.shape[0]} people but {ids.shape[0]} track ids")
            object.__setattr__(self, "track_ids", ids)

    @classmethod
    def empty(cls, num_joints: int = 17, joint_set: str = "coco") -> "Poses":
        return cls(np.zeros((0, num_joints, 3), np.float32), np.zeros((0,), np.float32), joint_set)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def with_min_score(self, min_score: float) -> "Poses":
        """The people scoring at least `min_score` (the same object when that is everyone)."""
        keep = self.scores >= min_score
        if keep.all():
            return self
        ids = None if self.track_ids is None else self.track_ids[keep]
        return Poses(self.keypoints[keep], self.scores[keep], self.joint_set, ids)

    def with_tracks(self, track_ids: np.ndarray, keypoints: np.ndarray | None = None) -> "Poses":
        """The same people with their track ids (N,) [and steadier (N, K, 3) keypoints]."""
        return Poses(self.keypoints if keypoints is None else keypoints, self.scores, self.joint_set, track_ids)

    @property
    def num_joints(self) -> int:
        return int(self.keypoints.shape[1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"joint_set": ..., "people": [{"score": s, "keypoints": [[x, y, v], ...]}, ...]}, each
        person with "track_id" (an int, or None while not confirmed) when people are tracked."""
        people = []
        for n, (person, s) in enumerate(zip(self.keypoints, self.scores)):
            entry: dict[str, Any] = {"score": round(float(s), 5)}
            if self.track_ids is not None:
                entry["track_id"] = int(self.track_ids[n]) if self.track_ids[n] >= 0 else None
            entry["keypoints"] = [[round(float(v), 3) for v in joint] for joint in person]
            people.append(entry)
        return {"joint_set": self.joint_set, "people": people}
