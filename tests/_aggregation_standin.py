"""A private stand-in for the aggregation modules, used only while they are not on this branch.

The aggregation helper builds `pose_stream.kernels.aggregate_ref` (ScaleOutputs, the NumPy reference) and
`pose_stream.kernels.aggregate_numba` (aggregate_numba). Decoding imports those names; where they do not
import, `install()` registers this minimal version under the same names so the end-to-end tests can run.
It follows the reference with torch's own operators (bilinear align_corners=False resize, 5x5 max-pool NMS,
top-k with ties by lower index) and is not meant to be fast: its refine is the grouping reference's.
"""
from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pose_stream.kernels.types import AggregatedMaps, Candidates


@dataclass(frozen=True)
class ScaleOutputs:
    outputs: tuple
    flipped: tuple | None = None
    factor: float = 1.0


def _tensor(a) -> torch.Tensor:
    a = np.asarray(a, np.float32)
    return torch.from_numpy(a if a.ndim == 4 else a[None])


def _half_pass(out0, out1, flip_index):
    out0, out1 = _tensor(out0), _tensor(out1)
    k = out1.shape[1]
    up = F.interpolate(out0, size=out1.shape[2:], mode="bilinear", align_corners=False)
    if flip_index is not None:
        up, out1 = torch.flip(up, [3]), torch.flip(out1, [3])
        heat = (up[:, :k][:, flip_index] + out1[:, flip_index]) / 2.0
        return heat, up[:, k:][:, flip_index]
    return (up[:, :k] + out1) / 2.0, up[:, k:]


@dataclass(frozen=True)
class StandinAggregation:
    """Like the real module's NumbaAggregation: candidates, the heatmaps, and refine(mean_tags)."""

    candidates: Candidates
    heatmaps: np.ndarray
    full_maps: AggregatedMaps

    def maps(self) -> AggregatedMaps:
        return self.full_maps

    def refine(self, mean_tags: np.ndarray):
        from pose_stream.kernels import group_ref
        from pose_stream.kernels.grouping_types import RefineRequest

        pending = np.ones((len(mean_tags), self.heatmaps.shape[0]), bool)
        return group_ref.refine_search(self.full_maps, RefineRequest(mean_tags, pending))


def aggregate_numba(
    scales: Sequence[ScaleOutputs], flip_index, base_hw, max_people: int = 30, nms_kernel: int = 5,
    heatmaps_out=None,
) -> StandinAggregation:
    ordered = sorted(scales, key=lambda s: -s.factor)
    total, tags = None, []
    for scale in ordered:
        passes = [_half_pass(*scale.outputs, None)]
        if scale.flipped is not None:
            passes.append(_half_pass(*scale.flipped, list(flip_index)))
        projected = [F.interpolate(t, size=tuple(base_hw), mode="bilinear", align_corners=False) for t, _ in passes]
        heat = projected[0] if len(projected) == 1 else (projected[0] + projected[1]) / 2.0
        total = heat if total is None else total + heat
        if scale.factor == 1.0 or len(ordered) == 1:
            tags = [F.interpolate(t, size=tuple(base_hw), mode="bilinear", align_corners=False) for _, t in passes]
    heat = total / float(len(ordered))
    maps = AggregatedMaps(
        np.ascontiguousarray(heat[0].numpy()), np.ascontiguousarray(torch.stack([t[0] for t in tags], -1).numpy())
    )
    pooled = F.max_pool2d(heat, nms_kernel, 1, nms_kernel // 2)
    kept = (heat * (pooled == heat).float())[0].reshape(heat.shape[1], -1).numpy() + np.float32(0)
    order = np.argsort(-kept, axis=1, kind="stable")[:, :max_people]
    w = int(base_hw[1])
    x, y = (order % w).astype(np.int32), (order // w).astype(np.int32)
    value = np.take_along_axis(kept, order, 1).astype(np.float32)
    cand_tags = maps.tags[np.arange(x.shape[0])[:, None], y, x]
    cands = Candidates(x, y, value, np.ascontiguousarray(cand_tags, np.float32))
    return StandinAggregation(cands, maps.heatmaps, maps)


def install() -> bool:
    """Register the stand-in where the real modules do not import; True when it was needed."""
    try:
        importlib.import_module("pose_stream.kernels.aggregate_ref")
        importlib.import_module("pose_stream.kernels.aggregate_numba")
        return False
    except ImportError:
        pass
    ref = types.ModuleType("pose_stream.kernels.aggregate_ref")
    ref.ScaleOutputs = ScaleOutputs
    fast = types.ModuleType("pose_stream.kernels.aggregate_numba")
    fast.aggregate_numba = aggregate_numba
    sys.modules["pose_stream.kernels.aggregate_ref"] = ref
    sys.modules["pose_stream.kernels.aggregate_numba"] = fast
    return True
