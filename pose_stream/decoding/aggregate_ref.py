"""Multi-resolution heatmap aggregation and candidate extraction: the plain NumPy reference.

Written for clarity; the Numba and CUDA paths are tested against it. It reproduces the reference test
pipeline (HigherHRNet `get_multi_stage_outputs` + `aggregate_results`, PROJECT2IMAGE on), see
docs/higherhrnet-reference.md, "Aggregation" and "Grouping" steps 1, 2 and 6.

Arithmetic contract (what every fast path must reproduce bit for bit):

* Bilinear resizing is torch's `F.interpolate(mode="bilinear", align_corners=False)` as its generic CPU
  kernel and its CUDA kernel compute it: per axis `scale = float32(n_in) / float32(n_out)`,
  `src = max(fma(scale, d + 0.5, -0.5), 0)`, `i0 = min(floor(src), n_in - 1)`, `l1 = clamp(src - i0, 0, 1)`,
  `l0 = 1 - l1`, `i1 = i0 + 1` (or `i0` at the last index); the horizontal pass first,
  `r = fma(x[i0], l0, x[i1] * l1)`, then the vertical pass, `out = fma(r[i0], l0, r[i1] * l1)`.
  `fma` is a float32 fused multiply-add rounded once (torch gets it from FMA contraction; we spell it out).
  torch's CPU build uses a different vectorised kernel when out_h + out_w <= 128 (and for 3-channel input on
  one thread); the reference GPU run never does, so neither do we.
* All other operations are single float32 operations in the order the reference applies them:
  `(a + b) / 2`, sums over scales left to right in decreasing scale factor, then `/ n_scales`.

Tie rule (torch.topk leaves the order of ties unspecified): candidates are sorted by value, descending, and
equal values by lower flat index `y * W + x` first. Suppressed pixels count as the value 0.0 (-0.0 becomes
+0.0), so they compete with kept peaks exactly as in the reference (`det * (det == maxpool(det))`).
Inputs must be finite.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from pose_stream.errors import PoseStreamError
from pose_stream.decoding.types import AggregatedMaps, Candidates, RefinePeaks, ScaleOutputs

_F32 = np.float32


# ----------------------------------------------------------------------------------------------- inputs


def scale_order(factors: Sequence[float]) -> tuple[list[int], int]:
    """The reference's visiting order of scales (largest factor first; the float sum depends on it) as indices
    into `factors`, and the position in that order of the scale whose tags are kept (factor 1.0, or the only
    scale)."""
    if len(factors) == 0:
        raise PoseStreamError("aggregation needs the outputs of at least one scale")
    if len(set(factors)) != len(factors):
        raise PoseStreamError(f"scale factors must be distinct, got {list(factors)}")
    if any(not (np.isfinite(f) and f > 0) for f in factors):
        raise PoseStreamError(f"scale factors must be positive, got {list(factors)}")
    order = sorted(range(len(factors)), key=lambda i: -factors[i])
    if len(order) == 1:
        return order, 0
    ones = [position for position, i in enumerate(order) if factors[i] == 1.0]
    if not ones:
        raise PoseStreamError(f"multi-scale aggregation keeps the tags of scale 1.0, which is not in {list(factors)}")
    return order, ones[0]


def check_flip_index(flip_index: Sequence[int] | None, num_joints: int) -> np.ndarray:
    """flip_index as int64 (K,), checked to be a permutation of the joints."""
    if flip_index is None:
        raise PoseStreamError("flip test needs the joint set's flip_index")
    index = np.asarray(flip_index, dtype=np.int64)
    if index.shape != (num_joints,) or sorted(index.tolist()) != list(range(num_joints)):
        raise PoseStreamError(f"flip_index must be a permutation of 0..{num_joints - 1}, got {list(flip_index)}")
    return index


def check_base_hw(base_hw: Sequence[int]) -> tuple[int, int]:
    if len(base_hw) != 2 or min(base_hw) < 1:
        raise PoseStreamError(f"base size must be (height, width) > 0, got {tuple(base_hw)}")
    return int(base_hw[0]), int(base_hw[1])


def validate_scales(
    scales: Sequence[ScaleOutputs], flip_index: Sequence[int] | None, base_hw: tuple[int, int]
) -> tuple[list[ScaleOutputs], int, np.ndarray | None]:
    """Checks a set of scales; returns them in the reference's visiting order, the tag scale's position in it,
    and the flip index as int64 (None without flip test)."""
    order, tag_position = scale_order([s.factor for s in scales])
    check_base_hw(base_hw)
    k = scales[0].num_joints
    if any(s.num_joints != k for s in scales):
        raise PoseStreamError(f"scales disagree on the number of joints: {[s.num_joints for s in scales]}")
    with_flip = scales[0].flipped is not None
    if any((s.flipped is not None) != with_flip for s in scales):
        raise PoseStreamError("either every scale or no scale has flipped outputs")
    index = check_flip_index(flip_index, k) if with_flip else None
    return [scales[i] for i in order], tag_position, index


# ------------------------------------------------------------------------------------------- arithmetic


def fma32(a: np.ndarray | float, b: np.ndarray | float, c: np.ndarray | float) -> np.ndarray:
    """float32 a * b + c rounded once, like C's fmaf (broadcasting).

    The product of two floats is exact in float64 and TwoSum gives the exact error of the float64 addition;
    rounding the float64 sum to float32 is then correct except when that sum lies exactly halfway between two
    floats while the true sum does not, which the error's sign settles.
    """
    a64, b64, c64 = (np.asarray(v, dtype=_F32).astype(np.float64) for v in (a, b, c))
    product = a64 * b64
    total = product + c64
    part = total - product
    error = (product - (total - part)) + (c64 - part)
    rounded = np.asarray(total.astype(_F32))
    back = rounded.astype(np.float64)
    towards = np.where(total > back, np.inf, -np.inf).astype(_F32)
    neighbour = np.nextafter(rounded, towards)
    halfway = (total != back) & ((back + neighbour.astype(np.float64)) * 0.5 == total)
    wrong = halfway & (error != 0)
    if np.any(wrong):
        upper = np.maximum(rounded, neighbour)
        lower = np.minimum(rounded, neighbour)
        rounded = np.where(wrong, np.where(error > 0, upper, lower), rounded)
    return rounded


class AxisWeights(NamedTuple):
    """Bilinear sampling of one axis, n_in -> n_out samples: out[d] = fma(x[i0[d]], l0[d], x[i1[d]] * l1[d])."""

    i0: np.ndarray  # int32 (n_out,)
    i1: np.ndarray  # int32 (n_out,)
    l0: np.ndarray  # float32 (n_out,)
    l1: np.ndarray  # float32 (n_out,)


def axis_weights(n_in: int, n_out: int) -> AxisWeights:
    """torch's align_corners=False source indices and weights for resizing one axis from n_in to n_out."""
    scale = _F32(n_in) / _F32(n_out)
    dst = np.arange(n_out, dtype=_F32)
    src = np.maximum(fma32(scale, dst + _F32(0.5), _F32(-0.5)), _F32(0))
    i0 = np.minimum(np.floor(src).astype(np.int32), n_in - 1)
    l1 = np.clip(src - i0.astype(_F32), _F32(0), _F32(1)).astype(_F32)
    l0 = (_F32(1) - l1).astype(_F32)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0).astype(np.int32)
    return AxisWeights(i0, i1, l0, l1)


def resize_bilinear(maps: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Resizes float32 (C, h, w) maps to (C, H, W) exactly as torch's bilinear align_corners=False."""
    rows = axis_weights(maps.shape[1], out_hw[0])
    cols = axis_weights(maps.shape[2], out_hw[1])
    across = fma32(maps[:, :, cols.i0], cols.l0, maps[:, :, cols.i1] * cols.l1)
    return fma32(across[:, rows.i0, :], rows.l0[:, None], across[:, rows.i1, :] * rows.l1[:, None])


# ------------------------------------------------------------------------------------------ aggregation


def _half_resolution(
    out0: np.ndarray, out1: np.ndarray, flip_index: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """One pass at half resolution: heatmaps mean(out0_up[:K], out1) and tags out0_up[K:], both (K, h/2, w/2).

    With `flip_index` the pass ran on the flipped input: flip its maps back (after upsampling, as the reference
    does) and take channel flip_index[j] for joint j.
    """
    k = out1.shape[0]
    up = resize_bilinear(out0, out1.shape[1:])
    if flip_index is not None:
        up = up[:, :, ::-1]
        out1 = out1[:, :, ::-1][flip_index]
        heat_up, tags = up[:k][flip_index], up[k:][flip_index]
    else:
        heat_up, tags = up[:k], up[k:]
    heatmaps = (heat_up + out1) / _F32(2)
    return heatmaps, np.ascontiguousarray(tags)


def aggregate_maps(
    scales: Sequence[ScaleOutputs], flip_index: Sequence[int] | None, base_hw: tuple[int, int]
) -> AggregatedMaps:
    """Aggregated full-resolution heatmaps and tags at the scale-1 network-input size `base_hw` (height, width).

    Per scale: each pass's half-resolution heatmaps and tags are projected to `base_hw`, the plain and flipped
    heatmaps averaged; heatmaps are summed over scales (largest factor first) and divided by the number of
    scales. Tags: the plain tags, then the flipped ones, of scale 1 only (the reference keeps no other scale's
    tags), so L = 2 with flip test and 1 without.
    """
    ordered, tag_position, index = validate_scales(scales, flip_index, base_hw)
    total = None
    tags: list[np.ndarray] = []
    for position, scale in enumerate(ordered):
        passes = [_half_resolution(*scale.outputs, None)]
        if scale.flipped is not None:
            passes.append(_half_resolution(*scale.flipped, index))
        projected = [resize_bilinear(heat, base_hw) for heat, _ in passes]
        heatmaps = projected[0] if len(projected) == 1 else (projected[0] + projected[1]) / _F32(2)
        total = heatmaps if total is None else total + heatmaps
        if position == tag_position:
            tags = [resize_bilinear(tag, base_hw) for _, tag in passes]
    final = total / _F32(len(ordered))
    return AggregatedMaps(heatmaps=np.ascontiguousarray(final, dtype=_F32), tags=np.stack(tags, axis=-1))


# ------------------------------------------------------------------------------------- NMS and top-k


def check_nms(h: int, w: int, max_people: int, nms_kernel: int) -> None:
    """Raises PoseStreamError unless NMS with `nms_kernel` and top-`max_people` make sense on an h x w map."""
    if nms_kernel < 1 or nms_kernel % 2 == 0:
        raise PoseStreamError(f"nms_kernel must be odd and positive, got {nms_kernel}")
    if not 1 <= max_people <= h * w:
        raise PoseStreamError(f"max_people must be in 1..{h * w} (map size {h}x{w}), got {max_people}")


def suppress_non_maxima(heatmaps: np.ndarray, nms_kernel: int = 5) -> np.ndarray:
    """(K, H, W) heatmaps where every pixel not equal to the max of its nms_kernel^2 window (pixels outside the
    map ignored, as max_pool2d's padding) is 0.0; a plateau keeps all its pixels."""
    pad = nms_kernel // 2
    padded = np.pad(heatmaps, ((0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (nms_kernel, nms_kernel), axis=(1, 2))
    window_max = windows.max(axis=(-2, -1))
    kept = np.where(heatmaps == window_max, heatmaps, _F32(0))
    return (kept + _F32(0)).astype(_F32)  # -0.0 + 0.0 is +0.0: one zero for every path


def top_candidates(maps: AggregatedMaps, max_people: int = 30, nms_kernel: int = 5) -> Candidates:
    """Per joint the `max_people` largest NMS-suppressed values (ties: lower flat index first) and their tags."""
    k, h, w = maps.heatmaps.shape
    check_nms(h, w, max_people, nms_kernel)
    flat = suppress_non_maxima(maps.heatmaps, nms_kernel).reshape(k, h * w)
    order = np.argsort(-flat, axis=1, kind="stable")[:, :max_people]  # stable: equal values keep index order
    value = np.take_along_axis(flat, order, axis=1)
    x = (order % w).astype(np.int32)
    y = (order // w).astype(np.int32)
    joint = np.arange(k)[:, None]
    return Candidates(
        x=x,
        y=y,
        value=value.astype(_F32),
        tags=np.ascontiguousarray(maps.tags[joint, y, x], dtype=_F32),
        neighbours=adjust_neighbours(maps.heatmaps, joint, y, x),
    )


def adjust_neighbours(heatmaps: np.ndarray, joint: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """heatmaps[joint] at [x+1, x-1, y+1, y-1] around each (y, x), indices clamped to the map: float32
    (..., 4) for broadcast index arrays joint, y, x (what the quarter-pixel adjust compares)."""
    h, w = heatmaps.shape[1:]
    return np.stack(
        [
            heatmaps[joint, y, np.minimum(x + 1, w - 1)],
            heatmaps[joint, y, np.maximum(x - 1, 0)],
            heatmaps[joint, np.minimum(y + 1, h - 1), x],
            heatmaps[joint, np.maximum(y - 1, 0), x],
        ],
        axis=-1,
    ).astype(_F32)


def aggregate_reference(
    scales: Sequence[ScaleOutputs],
    flip_index: Sequence[int] | None,
    base_hw: tuple[int, int],
    max_people: int = 30,
    nms_kernel: int = 5,
) -> tuple[Candidates, AggregatedMaps]:
    """aggregate_maps then top_candidates: the reference for every aggregation path."""
    maps = aggregate_maps(scales, flip_index, base_hw)
    return top_candidates(maps, max_people, nms_kernel), maps


# ------------------------------------------------------------------------------------------------ refine


def check_mean_tags(mean_tags: np.ndarray, tag_dim: int) -> np.ndarray:
    mean_tags = np.ascontiguousarray(mean_tags, dtype=_F32)
    if mean_tags.ndim != 2 or mean_tags.shape[1] != tag_dim:
        raise PoseStreamError(f"mean tags must be (N, {tag_dim}), got shape {mean_tags.shape}")
    return mean_tags


def refine_peaks(maps: AggregatedMaps, mean_tags: np.ndarray, pending: np.ndarray | None = None) -> RefinePeaks:
    """The refine search (reference doc, Grouping step 6), the one reference for every refine path.

    For every person (mean tag, (N, L) float32) and joint where `pending` (bool (N, K); None: all joints)
    is True: the first row-major argmax of heatmap - round(||tag - mean tag||) (round half to even, float32
    throughout, squared differences summed over L in order), its heatmap value and the four neighbour values
    the quarter-pixel adjust reads. Grouping asks only for the joints matching left unassigned: refine
    never changes an assigned joint. Entries not searched are zeros."""
    k, h, w = maps.heatmaps.shape
    mean_tags = check_mean_tags(mean_tags, maps.tags.shape[3])
    n = mean_tags.shape[0]
    pending = np.ones((n, k), bool) if pending is None else np.asarray(pending, bool)
    best = np.zeros((n, k), np.int64)
    for person, joint in zip(*np.nonzero(pending)):
        diff = maps.tags[joint] - mean_tags[person]
        squared = diff[..., 0] * diff[..., 0]
        for dim in range(1, diff.shape[-1]):
            squared = squared + diff[..., dim] * diff[..., dim]
        score = maps.heatmaps[joint] - np.rint(np.sqrt(squared))
        best[person, joint] = np.argmax(score)  # the first maximum in row-major order
    return refine_result(maps.heatmaps, best, pending)


def refine_result(heatmaps: np.ndarray, best: np.ndarray, pending: np.ndarray | None = None) -> RefinePeaks:
    """RefinePeaks from the flat index (N, K) of each person's and joint's peak; zeros where `pending`
    (bool (N, K), None: everywhere searched) is False."""
    w = heatmaps.shape[2]
    y, x = best // w, best % w
    joint = np.arange(heatmaps.shape[0])[None, :]
    peaks = RefinePeaks(
        x=x.astype(np.int32),
        y=y.astype(np.int32),
        value=heatmaps[joint, y, x].astype(_F32),
        neighbours=adjust_neighbours(heatmaps, joint, y, x),
    )
    if pending is not None:
        for field in (peaks.x, peaks.y, peaks.value, peaks.neighbours):
            field[~pending] = 0
    return peaks
