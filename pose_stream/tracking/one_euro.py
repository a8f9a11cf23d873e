"""The One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) over whole arrays at once.

A low-pass filter whose cutoff rises with speed: still joints are smoothed hard (no jitter), moving joints
lightly (little lag). Per element, with dt the time since the previous sample:

    alpha(f) = 1 / (1 + 1 / (2π f dt))
    speed    = alpha(d_cutoff) · (x - x̂_prev) / dt + (1 - alpha(d_cutoff)) · speed_prev
    x̂        = alpha(min_cutoff + beta · |speed|) · x + (1 - alpha(...)) · x̂_prev

Written here rather than taken from the authors' `OneEuroFilter` package because that one filters one
float per object and call: 10 people × 17 joints × 2 coordinates would be 340 Python calls per frame. This
one does a person in a few NumPy operations; tests check it against the package, element by element.
"""
from __future__ import annotations

import math

import numpy as np

from pose_stream.tracking.config import SmoothingConfig


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters an array of any shape whose elements are sampled together, each element on its own.

    Args:
        config: the filter's parameters.
        first: the first sample (returned as it is).
        timestamp: its time in seconds.
        period: seconds between samples, used while timestamps do not increase (default 1/25).
    """

    def __init__(self, config: SmoothingConfig, first: np.ndarray, timestamp: float, period: float = 1 / 25) -> None:
        if not period > 0:
            raise ValueError("period must be positive")
        self.config = config
        self.value = np.array(first, dtype=np.float64)
        self.speed = np.zeros_like(self.value)
        self.timestamp = float(timestamp)
        self.period = float(period)

    def __call__(self, sample: np.ndarray, timestamp: float) -> np.ndarray:
        """The filtered value of `sample`, taken at `timestamp` seconds."""
        sample = np.asarray(sample, dtype=np.float64)
        if timestamp > self.timestamp:
            self.period = timestamp - self.timestamp
        self.timestamp = float(timestamp)
        dt, c = self.period, self.config
        a = _alpha(c.d_cutoff, dt)
        self.speed = a * (sample - self.value) / dt + (1 - a) * self.speed
        a = _alpha(c.min_cutoff + c.beta * np.abs(self.speed), dt)
        self.value = a * sample + (1 - a) * self.value
        return self.value.copy()
