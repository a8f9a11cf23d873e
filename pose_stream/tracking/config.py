"""How people are tracked (TrackingConfig) and how their joints are smoothed (SmoothingConfig)."""
from __future__ import annotations

import math
from dataclasses import dataclass

TRACKERS = ("norfair", "bytetrack")


@dataclass(frozen=True)
class TrackingConfig:
    """Person tracking, per source.

    Attributes:
        tracker: "norfair" (each joint followed by a Kalman filter, people associated by OKS) or "bytetrack"
            (roboflow `trackers`: boxes around the joints, associated by IoU).
        min_joint: joints with a value below this do not take part in association (not found in this frame).
        min_similarity: lowest OKS (norfair) or IoU (bytetrack) at which a person continues a track.
        confirm_frames: frames in which a new person must be found before getting a track id (until then
            their track id is None in the outputs: a fragment seen once never gets one).
        keep_lost_seconds: how long a track that finds no one survives (someone hidden behind another person
            keeps their id when they reappear within this time).
    """

    tracker: str = "norfair"
    min_joint: float = 0.1
    min_similarity: float = 0.1
    confirm_frames: int = 3
    keep_lost_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.tracker not in TRACKERS:
            raise ValueError(f"tracker must be one of {', '.join(TRACKERS)}, got {self.tracker!r}")
        if not 0 <= self.min_joint <= 1 or not 0 < self.min_similarity < 1:
            raise ValueError("min_joint must be in [0, 1] and min_similarity in (0, 1)")
        if self.confirm_frames < 1:
            raise ValueError("confirm_frames must be at least 1")
        if not 0 <= self.keep_lost_seconds < math.inf:
            raise ValueError("keep_lost_seconds must be a finite number >= 0")


@dataclass(frozen=True)
class SmoothingConfig:
    """One-Euro filter of every joint of every tracked person (Casiez et al., CHI 2012).

    Attributes:
        min_cutoff: cutoff frequency (Hz) when a joint is still: lower removes more jitter, adds more lag.
        beta: how fast the cutoff rises with the joint's speed: higher follows fast motion with less lag.
        d_cutoff: cutoff frequency (Hz) of the speed estimate.
    """

    min_cutoff: float = 1.5
    beta: float = 0.01
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)}")
        if not 0 <= self.beta < math.inf:
            raise ValueError(f"beta must be a number >= 0, got {self.beta}")
