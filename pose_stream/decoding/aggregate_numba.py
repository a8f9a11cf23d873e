"""Multi-resolution heatmap aggregation and candidates on the CPU with Numba.

Produces exactly what the NumPy reference (`aggregate_ref`) produces, bit for bit: the same float32
operations in the same order, `fma` as LLVM's fused multiply-add, and the same tie rule.

One pass per joint, in bands of output rows: a band's full-resolution heatmap rows are built from the rows
of the horizontal half -> full pass they read, those from half-resolution heatmap rows, those from rows of
the quarter -> half pass and of out1; the intermediate rows of a band stay in cache, so nothing but the
heatmaps is written to memory. The candidates (NMS + top-k) and the tile maxima refine needs are taken from
each row while it is in cache.

Tags are not computed at all here: the kept scale's tag channels and the resize tables are a
`tag_source.TagSource`, which gives any full-resolution tag exactly, on demand (the candidates' here, the
tiles refine visits later; `NumbaAggregation.maps()` builds the full `AggregatedMaps` for tests).

Work is split by joint across Numba's threads (`NUMBA_NUM_THREADS`, `numba.set_num_threads`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numba import uint64 as _u

from pose_stream.errors import PoseStreamError
from pose_stream.decoding.aggregate_ref import (
    ScaleOutputs,
    adjust_neighbours,
    check_nms,
    validate_scales,
)
from pose_stream.decoding.nms_numba import scan_band
from pose_stream.decoding.bilinear_numba import blend, column_plan, fma, resize_row, row_tables
from pose_stream.decoding.refine_numba import (
    TILE,
    RefineMaps,
    band_max,
    close_band,
    refine_search,
    tile_shape,
)
from pose_stream.decoding.tag_source import TagSource, block_range, full_maps, sample_tags
from pose_stream.decoding.types import AggregatedMaps, Candidates, RefinePeaks

_F32 = np.float32
_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)
_BAND = 32  # output rows projected together (their intermediate rows stay in cache)


# ------------------------------------------------------------------------------------------- rows


@njit(cache=True, nogil=True)
def _span(tables, first, last):
    """The source indices [lo, hi] that outputs first..last read (the tables' indices only grow)."""
    return tables[0][first], max(tables[0][last], tables[1][last])


@njit(cache=True, nogil=True)
def _band_rows(h_rows, q_rows, big_h):
    """The most half-resolution and quarter-resolution rows any band of _BAND output rows reads."""
    n_half = n_quarter = 0
    for y0 in range(0, big_h, _BAND):
        r_lo, r_hi = _span(h_rows, y0, min(y0 + _BAND, big_h) - 1)
        q_lo, q_hi = _span(q_rows, r_lo, r_hi)
        n_half = max(n_half, r_hi - r_lo + 1)
        n_quarter = max(n_quarter, q_hi - q_lo + 1)
    return n_half, n_quarter


@njit(cache=True, nogil=True)
def _wide_heat_rows(out0_plane, out1_plane, mirrored, r_lo, r_hi, q_rows, q_cols, h_cols, quarter, half, wide):
    """Rows r_lo..r_hi of one pass's half-resolution heatmap mean(out0_up, out1) (flipped back when
    `mirrored`: column x reads column w2-1-x), each resized horizontally to full width into wide[r - r_lo]."""
    q_lo, q_hi = _span(q_rows, r_lo, r_hi)
    for q in range(q_lo, q_hi + 1):
        resize_row(out0_plane[q], q_cols, quarter[q - q_lo])
    w2 = half.shape[0]
    for r in range(r_lo, r_hi + 1):
        upper, lower = quarter[q_rows[0][r] - q_lo], quarter[q_rows[1][r] - q_lo]
        m0, m1 = q_rows[2][r], q_rows[3][r]
        src = out1_plane[r]
        if mirrored:
            for x in range(w2):
                t = _u(w2 - 1 - x)
                half[_u(x)] = (fma(upper[t], m0, lower[t] * m1) + src[t]) * _HALF
        else:
            for x in range(w2):
                half[_u(x)] = (fma(upper[_u(x)], m0, lower[_u(x)] * m1) + src[_u(x)]) * _HALF
        resize_row(half, h_cols, wide[r - r_lo])


@njit(cache=True, nogil=True)
def _project_joint(out0, out1, out0_flip, out1_flip, k, k_flip, with_flip, q_rows, q_cols, h_rows, h_cols, first,
                   divisor, out, finish, pad, index, value, tile, tiles):
    """One scale's heatmap of joint k at full resolution into `out` (H, W): the plain pass's, or the mean of
    it and the flipped pass's (channel k_flip of the flipped outputs, flipped back); set on the first scale,
    added on the others, then / divisor when divisor > 0 (the last of several scales).

    Works in bands of _BAND output rows, whose intermediate rows stay in cache. `finish` (the last scale):
    also extracts the candidates into index/value and the tile maxima into `tiles`, row by row while the
    rows are still in cache (top-k of row y - pad once row y is final).
    """
    i0, i1, l0, l1 = h_rows
    big_h, big_w = out.shape
    w2 = out1.shape[2]
    n_half, n_quarter = _band_rows(h_rows, q_rows, big_h)
    quarter = np.empty((n_quarter, w2), np.float32)
    wide_p = np.empty((n_half, big_w), np.float32)
    wide_f = np.empty((n_half, big_w), np.float32)
    half = np.empty(w2, np.float32)
    row = np.empty(big_w, np.float32)
    band = np.empty(big_w, np.float32)
    fused = with_flip and first and divisor <= _ZERO  # the single-scale flip test: one loop per row
    filled = 0
    for y0 in range(0, big_h, _BAND):
        y1 = min(y0 + _BAND, big_h)
        r_lo, r_hi = _span(h_rows, y0, y1 - 1)
        _wide_heat_rows(out0[k], out1[k], False, r_lo, r_hi, q_rows, q_cols, h_cols, quarter, half, wide_p)
        if with_flip:
            _wide_heat_rows(out0_flip[k_flip], out1_flip[k_flip], True, r_lo, r_hi, q_rows, q_cols, h_cols, quarter,
                            half, wide_f)
        for y in range(y0, y1):
            dst = out[y]
            p0, p1, f0, f1 = wide_p[i0[y] - r_lo], wide_p[i1[y] - r_lo], wide_f[i0[y] - r_lo], wide_f[i1[y] - r_lo]
            m0, m1 = l0[y], l1[y]
            if fused:
                for x in range(big_w):
                    dst[x] = (fma(p0[x], m0, p1[x] * m1) + fma(f0[x], m0, f1[x] * m1)) * _HALF
            else:
                blend(p0, p1, m0, m1, row)
                if with_flip:
                    for x in range(big_w):
                        row[x] = (row[x] + fma(f0[x], m0, f1[x] * m1)) * _HALF
                if first:
                    for x in range(big_w):
                        dst[x] = row[x]
                else:
                    for x in range(big_w):
                        dst[x] = dst[x] + row[x]
                if divisor > _ZERO:
                    for x in range(big_w):
                        dst[x] = dst[x] / divisor
            if finish:
                band_max(dst, band, y % tile == 0)
                if y % tile == tile - 1 or y == big_h - 1:
                    close_band(band, tile, tiles[y // tile])
                final = y - pad  # rows up to here have their whole window
                if final >= 0 and final % tile == tile - 1:
                    ty = final // tile
                    filled = scan_band(out, ty * tile, final + 1, pad, tile, tiles[ty], index, value, filled)
    if finish:
        for ty in range(max(big_h - pad, 0) // tile, tiles.shape[0]):  # the bands not yet scanned
            filled = scan_band(out, ty * tile, min(ty * tile + tile, big_h), pad, tile, tiles[ty], index, value,
                                filled)


# ----------------------------------------------------------------------------------------- one scale


@njit(cache=True, nogil=True, parallel=True)
def _aggregate_scale(
    out0, out1, out0_flip, out1_flip, with_flip, flip_index, q_rows, q_cols, h_rows, h_cols, heatmaps, first,
    divisor, finish, pad, cand_index, cand_value, tile, tile_max,
    with_tags, planes, channel, row_span, col_windows, levels, tag_lo, tag_hi,
):
    """Adds one scale's heatmaps to `heatmaps` (or sets them when `first`); when `finish`, divides by
    `divisor` (> 0 only with several scales), extracts the candidates and the tile maxima. `with_tags`:
    also the tile ranges of the kept tags (`tag_source.block_range` over the TagSource planes / channel)."""
    for k in prange(out1.shape[0]):
        _project_joint(
            out0, out1, out0_flip, out1_flip, k, flip_index[k], with_flip, q_rows, q_cols, h_rows, h_cols, first,
            divisor, heatmaps[k], finish, pad, cand_index[k], cand_value[k], tile, tile_max[k],
        )
        if with_tags:
            for dim in range(len(planes)):
                low = np.empty((levels, planes[dim].shape[2]), np.float32)
                high = np.empty((levels, planes[dim].shape[2]), np.float32)
                block_range(planes[dim][channel[k, dim]], row_span, col_windows[dim], tag_lo[k, dim], tag_hi[k, dim],
                            low, high)


# ------------------------------------------------------------------------------------------------ API


@dataclass(frozen=True)
class NumbaAggregation:
    """What the CPU path hands to grouping: the candidates, and what refine needs.

    Attributes:
        candidates: top-M NMS peaks per joint, with tags and adjust neighbours (see `Candidates`).
        refine_maps: the heatmaps (K, H, W), the tag maps as their sources (`tag_source.TagSource`: the
            kept scale's out0 arrays, referenced, not copied), the tile summaries, the candidates as seeds.
    """

    candidates: Candidates
    refine_maps: RefineMaps

    @property
    def heatmaps(self) -> np.ndarray:
        """float32 (K, H, W) aggregated heatmaps at the network-input size."""
        return self.refine_maps.heatmaps

    def refine(self, mean_tags: np.ndarray, pending: np.ndarray | None = None) -> RefinePeaks:
        """Refine peaks for persons with mean tags (N, L), for the joints where pending (bool (N, K)) is True
        (all when None; others are zeros); equals `aggregate_ref.refine_peaks` on `maps()`."""
        return refine_search(self.refine_maps, mean_tags, pending)

    def maps(self) -> AggregatedMaps:
        """The full AggregatedMaps (tags computed pixel by pixel: slow, for tests and debugging)."""
        return AggregatedMaps(heatmaps=self.heatmaps, tags=full_maps(self.refine_maps.tags))


def aggregate_numba(
    scales: Sequence[ScaleOutputs],
    flip_index: Sequence[int] | None,
    base_hw: tuple[int, int],
    max_people: int = 30,
    nms_kernel: int = 5,
    heatmaps_out: np.ndarray | None = None,
) -> NumbaAggregation:
    """Aggregation and candidates equal to `aggregate_ref.aggregate_reference` (see its module docstring).

    `heatmaps_out`: a float32 C-contiguous (K, H, W) array to overwrite instead of allocating (fresh pages
    cost several milliseconds at 512x960); the caller must not be reading it (a pipeline alternates two).
    The result reads the tag channels of the kept scale's out0 arrays when refining: leave them unchanged
    until then.
    """
    ordered, tag_position, index = validate_scales(scales, flip_index, base_hw)
    k = ordered[0].num_joints
    h, w = int(base_hw[0]), int(base_hw[1])
    with_flip = index is not None
    heatmaps = _heatmap_buffer(heatmaps_out, (k, h, w))
    check_nms(h, w, max_people, nms_kernel)
    tile_max = np.empty((k,) + tile_shape(h, w), _F32)
    cand_index = np.empty((k, max_people), np.int64)
    cand_value = np.empty((k, max_people), _F32)
    flip = index if with_flip else np.zeros(k, np.int64)
    divisor = _F32(len(ordered)) if len(ordered) > 1 else _ZERO
    tags = _tag_source(ordered[tag_position], flip, with_flip, (h, w))
    row_span, col_windows, levels = tags.tile_windows(TILE)
    tag_lo = np.empty((k, tags.tag_dim) + tile_max.shape[1:], _F32)
    tag_hi = np.empty_like(tag_lo)
    for position, scale in enumerate(ordered):
        out0, out1 = scale.outputs
        out0_flip, out1_flip = scale.flipped if with_flip else scale.outputs
        (h4, w4), (h2, w2) = scale.quarter_hw, scale.half_hw
        last = position == len(ordered) - 1
        _aggregate_scale(
            out0, out1, out0_flip, out1_flip, with_flip, flip,
            row_tables(h4, h2), column_plan(w4, w2), row_tables(h2, h), column_plan(w2, w),
            heatmaps, position == 0, divisor if last else _ZERO, last, nms_kernel // 2, cand_index, cand_value,
            TILE, tile_max, position == tag_position, tags.planes, tags.channel, row_span, col_windows, levels,
            tag_lo, tag_hi,
        )
    x = (cand_index % w).astype(np.int32)
    y = (cand_index // w).astype(np.int32)
    cand_tags = np.empty((k, max_people, tags.tag_dim), _F32)
    sample_tags(tags.planes, tags.channel, tags.mirrored, tags.stages, y, x, cand_tags)
    candidates = Candidates(
        x=x, y=y, value=cand_value, tags=cand_tags,
        neighbours=adjust_neighbours(heatmaps, np.arange(k)[:, None], y, x),
    )
    return NumbaAggregation(candidates, RefineMaps(heatmaps, tags, tile_max, tag_lo, tag_hi, cand_index, cand_tags))


def _tag_source(scale: ScaleOutputs, flip: np.ndarray, with_flip: bool, base_hw: tuple[int, int]) -> TagSource:
    """The kept tags: out0's tag channels K + k (plain) and K + flip[k] of the flipped pass, mirrored."""
    k = scale.num_joints
    (h4, w4), (h2, w2) = scale.quarter_hw, scale.half_hw
    planes = (scale.outputs[0], scale.flipped[0]) if with_flip else (scale.outputs[0],)
    channel = np.stack([k + np.arange(k), k + flip], axis=1) if with_flip else (k + np.arange(k))[:, None]
    mirrored = np.array([False, True] if with_flip else [False])
    return TagSource(planes, np.ascontiguousarray(channel, dtype=np.int64), mirrored, row_tables(h4, h2),
                     row_tables(w4, w2), row_tables(h2, base_hw[0]), row_tables(w2, base_hw[1]))


def _heatmap_buffer(out: np.ndarray | None, shape: tuple[int, int, int]) -> np.ndarray:
    if out is None:
        return np.empty(shape, _F32)
    if out.shape != shape or out.dtype != _F32 or not out.flags.c_contiguous:
        raise PoseStreamError(f"heatmaps_out must be float32 C-contiguous {shape}, got {out.dtype} {out.shape}")
    return out
