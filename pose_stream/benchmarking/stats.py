"""Latency statistics of one stage."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StageStats:
    """Milliseconds per call of one stage over the timed (post-warm-up) calls."""

    median_ms: float
    p99_ms: float
    mean_ms: float
    count: int

    @classmethod
    def from_seconds(cls, seconds: Sequence[float]) -> "StageStats":
        if len(seconds) == 0:
            raise ValueError("no timings")
        ms = np.asarray(seconds, np.float64) * 1e3
        return cls(float(np.median(ms)), float(np.percentile(ms, 99)), float(ms.mean()), int(ms.size))

    def to_dict(self) -> dict[str, float]:
        return {"median_ms": round(self.median_ms, 4), "p99_ms": round(self.p99_ms, 4),
                "mean_ms": round(self.mean_ms, 4), "count": self.count}
