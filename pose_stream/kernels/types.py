"""Data passed between aggregation and grouping. Shape glossary:

K joints, M candidates per joint (top-k, 30), L tag dimensions (1, 2 with flip, 2 x scales),
H x W the network-input resolution (where aggregated maps live), N people.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candidates:
    """Top-M NMS peaks per joint of the aggregated heatmaps, in network-input pixels.

    Attributes:
        x: int32 (K, M) column of each peak.
        y: int32 (K, M) row of each peak.
        value: float32 (K, M) aggregated heatmap value, descending along M (ties keep index order).
        tags: float32 (K, M, L) tag vector at the peak.
    """

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    tags: np.ndarray

    @property
    def num_joints(self) -> int:
        return int(self.value.shape[0])

    @property
    def tag_dim(self) -> int:
        return int(self.tags.shape[2])


@dataclass(frozen=True)
class AggregatedMaps:
    """Aggregated full-resolution maps (what refine and adjust read).

    Attributes:
        heatmaps: float32 (K, H, W), mean over plain/flipped passes and scales.
        tags: float32 (K, H, W, L), tag maps stacked along the last axis.
    """

    heatmaps: np.ndarray
    tags: np.ndarray
