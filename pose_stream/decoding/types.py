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
        neighbours: float32 (K, M, 4) or None: the aggregated heatmap at [x+1, x-1, y+1, y-1] of each peak
            (indices clamped to the map), what the quarter-pixel adjust compares; lets grouping adjust without
            the full maps (the CUDA path never copies them to the host).
    """

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    tags: np.ndarray
    neighbours: np.ndarray | None = None

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


@dataclass(frozen=True)
class RefinePeaks:
    """Per person and joint, the refine peak: argmax over the map of heatmap - round(||tag - person mean tag||).

    The argmax is the first maximum in row-major order. `neighbours` holds the heatmap at the four pixels the
    quarter-pixel adjust compares, with indices clamped to the map: [x+1, x-1, y+1, y-1] as
    hm[y, min(x+1, W-1)], hm[y, max(x-1, 0)], hm[min(y+1, H-1), x], hm[max(y-1, 0), x].
    A search may cover only some (person, joint) pairs (grouping asks for the unassigned joints); the
    others are zeros. Every refine path fills one: `aggregate_ref.refine_peaks` (the reference),
    `refine_numba.refine_search` (CPU), `aggregate_cuda.CudaAggregator.refine` (GPU, all joints).

    Attributes:
        x: int32 (N, K) column of the peak.
        y: int32 (N, K) row of the peak.
        value: float32 (N, K) heatmap value at the peak (not the tag-penalised score).
        neighbours: float32 (N, K, 4) heatmap at [x+1, x-1, y+1, y-1] (clamped).
    """

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    neighbours: np.ndarray
