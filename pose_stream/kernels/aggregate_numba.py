"""Multi-resolution heatmap aggregation, candidates and refine peaks on the CPU with Numba.

Produces exactly what the NumPy reference (`aggregate_ref`) produces, bit for bit: the same float32
operations in the same order, `fma` as LLVM's fused multiply-add, and the same tie rule.

What it does not do is write the full-resolution tag maps (K x H x W x L floats, 67 MB per frame at
512x960 with flip; writing them would cost more than everything else here together). It keeps the scale-1
tags at half resolution and evaluates the full-resolution tag of any pixel on demand with the projection's
own arithmetic, which gives the very value the full map would hold: for the candidates, for refine, and for
`NumbaAggregation.maps()` when someone wants the full `AggregatedMaps` (tests, debugging).

Work is split by joint across Numba's threads. Loops are simple and use unsigned indices where an index could
be negative to Numba's eyes, so that LLVM vectorises them (Numba's negative-index wraparound stops it).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba import uint64 as _u
from numba.core import cgutils
from numba.extending import intrinsic

from pose_stream.errors import PoseStreamError
from pose_stream.kernels.aggregate_ref import (
    ScaleOutputs,
    check_nms,
    adjust_neighbours,
    axis_weights,
    check_mean_tags,
    refine_result,
    validate_scales,
)
from pose_stream.kernels.types import AggregatedMaps, Candidates, RefinePeaks

_F32 = np.float32
_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)
_CHUNK = 64  # top-k tests this many pixels at once (vectorised) before looking at any of them
TILE = 16  # refine skips TILE x TILE blocks of the heatmap whose maximum cannot beat the best score so far


@intrinsic
def _fma(typingctx, a, b, c):
    """float32 fused multiply-add (llvm.fma.f32): rounded once, as the reference's fma32."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32] * 3), "llvm.fma.f32")
        return builder.call(fn, args)

    return sig, codegen


# ------------------------------------------------------------------------------------------- tables


def _contiguous(weights) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.ascontiguousarray(a) for a in weights)  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _row_tables(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _contiguous(axis_weights(n_in, n_out))


@functools.lru_cache(maxsize=64)
def _column_plan(n_in: int, n_out: int) -> tuple:
    """Column tables plus, for an upsampling by 1, 2 or 4, its periodic interior [j_lo, j_hi): there output
    column f*j + r reads source columns j + a[r], j + b[r] with weights w0[r], w1[r]. Every column of the
    interior is checked against the tables, so the fast loop computes exactly the tables' values."""
    i0, i1, l0, l1 = _row_tables(n_in, n_out)
    factor = n_out // n_in
    a = np.zeros(4, np.int64)
    b = np.zeros(4, np.int64)
    w0 = np.zeros(4, _F32)
    w1 = np.zeros(4, _F32)
    j_lo = j_hi = 0
    if factor in (1, 2, 4) and factor * n_in == n_out:
        mid = n_in // 2
        cols = factor * mid + np.arange(factor)
        a[:factor], b[:factor] = i0[cols] - mid, i1[cols] - mid
        w0[:factor], w1[:factor] = l0[cols], l1[cols]
        j = np.arange(n_in)[:, None]
        periodic = np.all(
            (i0.reshape(n_in, factor) == j + a[:factor])
            & (i1.reshape(n_in, factor) == j + b[:factor])
            & (l0.reshape(n_in, factor) == w0[:factor])
            & (l1.reshape(n_in, factor) == w1[:factor]),
            axis=1,
        )
        j_lo, j_hi = mid, mid + 1
        while j_lo > 0 and periodic[j_lo - 1]:
            j_lo -= 1
        while j_hi < n_in and periodic[j_hi]:
            j_hi += 1
    else:
        factor = 0
    return (i0, i1, l0, l1, factor, j_lo, j_hi, a, b, w0, w1)


# ------------------------------------------------------------------------------------------- resizing


@njit(cache=True)
def _resize_across(src, plan, out):
    """Horizontal pass: out[r, x] = fma(src[r, i0[x]], l0[x], src[r, i1[x]] * l1[x]) for every row r.

    Inside the periodic interior of an integer upsampling the same values come phase by phase from
    contiguous loads, which vectorises; the border columns use the tables directly.
    """
    i0, i1, l0, l1, factor, j_lo, j_hi, a, b, w0, w1 = plan
    n_out = out.shape[1]
    # Phase constants as scalars: read from arrays, LLVM would reload them after every store.
    a0, a1, a2, a3 = a[0], a[1], a[2], a[3]
    b0, b1, b2, b3 = b[0], b[1], b[2], b[3]
    u0, u1, u2, u3 = w0[0], w0[1], w0[2], w0[3]
    v0, v1, v2, v3 = w1[0], w1[1], w1[2], w1[3]
    for r in range(src.shape[0]):
        s = src[r]
        o = out[r]
        for x in range(0, factor * j_lo):
            o[x] = _fma(s[i0[x]], l0[x], s[i1[x]] * l1[x])
        for x in range(factor * j_hi, n_out):
            o[x] = _fma(s[i0[x]], l0[x], s[i1[x]] * l1[x])
        if factor == 1:
            for j in range(j_lo, j_hi):
                o[_u(j)] = _fma(s[_u(j + a0)], u0, s[_u(j + b0)] * v0)
        elif factor == 2:
            for j in range(j_lo, j_hi):
                o[_u(2 * j)] = _fma(s[_u(j + a0)], u0, s[_u(j + b0)] * v0)
                o[_u(2 * j + 1)] = _fma(s[_u(j + a1)], u1, s[_u(j + b1)] * v1)
        elif factor == 4:
            for j in range(j_lo, j_hi):
                o[_u(4 * j)] = _fma(s[_u(j + a0)], u0, s[_u(j + b0)] * v0)
                o[_u(4 * j + 1)] = _fma(s[_u(j + a1)], u1, s[_u(j + b1)] * v1)
                o[_u(4 * j + 2)] = _fma(s[_u(j + a2)], u2, s[_u(j + b2)] * v2)
                o[_u(4 * j + 3)] = _fma(s[_u(j + a3)], u3, s[_u(j + b3)] * v3)


@njit(cache=True)
def _blend(upper, lower, w_upper, w_lower, out):
    """Vertical pass for one output row: out[x] = fma(upper[x], w_upper, lower[x] * w_lower)."""
    for x in range(out.shape[0]):
        out[x] = _fma(upper[x], w_upper, lower[x] * w_lower)


@njit(cache=True)
def _tag_at(plane, rows, cols, y, x):
    """The projection of one half-resolution map at full-resolution pixel (y, x): the value the full map
    would hold there (horizontal pass first, then vertical, as `_resize_across` and `_blend`)."""
    r0, r1, m0, m1 = rows[0][y], rows[1][y], rows[2][y], rows[3][y]
    c0, c1, l0, l1 = cols[0][x], cols[1][x], cols[2][x], cols[3][x]
    upper = _fma(plane[r0, c0], l0, plane[r0, c1] * l1)
    lower = _fma(plane[r1, c0], l0, plane[r1, c1] * l1)
    return _fma(upper, m0, lower * m1)


@njit(cache=True)
def _half_pass(out0, out1, channel, k, rows, cols, mirrored, with_tags, heat, tags):
    """Heatmap mean(out0_up[c], out1[c]) and tags out0_up[K + c] at half resolution for source channel c.

    `mirrored`: the pass ran on the flipped input; column x of the result reads column w2-1-x (flip back).
    """
    h2, w2 = heat.shape
    i0, i1, l0, l1 = rows
    across = np.empty((out0.shape[1], w2), np.float32)
    line = np.empty(w2, np.float32)
    _resize_across(out0[channel], cols, across)
    for y in range(h2):
        _blend(across[i0[y]], across[i1[y]], l0[y], l1[y], line)
        src = out1[channel, y]
        dst = heat[y]
        if mirrored:
            for x in range(w2):
                dst[x] = (line[_u(w2 - 1 - x)] + src[_u(w2 - 1 - x)]) * _HALF
        else:
            for x in range(w2):
                dst[x] = (line[x] + src[x]) * _HALF
    if with_tags:
        _resize_across(out0[k + channel], cols, across)
        for y in range(h2):
            if mirrored:
                _blend(across[i0[y]], across[i1[y]], l0[y], l1[y], line)
                dst = tags[y]
                for x in range(w2):
                    dst[x] = line[_u(w2 - 1 - x)]
            else:
                _blend(across[i0[y]], across[i1[y]], l0[y], l1[y], tags[y])


@njit(cache=True)
def _project_joint(plain, flipped, with_flip, rows, cols, first, divisor, out, finish, pad, index, value, tiles):
    """Projects one joint's half-resolution heatmaps (plain and flipped) to full resolution into `out`:
    out = mean(plain, flipped) (first scale) or out + mean(...), then / divisor when divisor > 0.

    `finish` (the last scale): also extracts the candidates into index/value and the tile maxima into
    `tiles`, row by row while the rows are still in cache (top-k of row y - pad once row y is final).
    """
    i0, i1, l0, l1 = rows
    big_h, big_w = out.shape
    across_plain = np.empty((plain.shape[0], big_w), np.float32)
    across_flip = np.empty((plain.shape[0], big_w), np.float32)
    line = np.empty(big_w, np.float32)
    band = np.empty(big_w, np.float32)
    filled = 0
    _resize_across(plain, cols, across_plain)
    if with_flip:
        _resize_across(flipped, cols, across_flip)
    fused = with_flip and first and divisor <= _ZERO  # the single-scale flip test: one loop per row
    for y in range(big_h):
        dst = out[y]
        p0, p1, f0, f1 = across_plain[i0[y]], across_plain[i1[y]], across_flip[i0[y]], across_flip[i1[y]]
        m0, m1 = l0[y], l1[y]
        if fused:
            for x in range(big_w):
                dst[x] = (_fma(p0[x], m0, p1[x] * m1) + _fma(f0[x], m0, f1[x] * m1)) * _HALF
        else:
            _blend(p0, p1, m0, m1, line)
            if with_flip:
                for x in range(big_w):
                    line[x] = (line[x] + _fma(f0[x], m0, f1[x] * m1)) * _HALF
            if first:
                for x in range(big_w):
                    dst[x] = line[x]
            else:
                for x in range(big_w):
                    dst[x] = dst[x] + line[x]
            if divisor > _ZERO:
                for x in range(big_w):
                    dst[x] = dst[x] / divisor
        if finish:
            _band_max(dst, band, y % TILE == 0)
            if y % TILE == TILE - 1 or y == big_h - 1:
                _close_band(band, tiles[y // TILE])
            if y >= pad:
                filled = _scan_row(out, y - pad, pad, index, value, filled)
    if finish:
        for y in range(max(big_h - pad, 0), big_h):
            filled = _scan_row(out, y, pad, index, value, filled)


# ------------------------------------------------------------------------------------ NMS and top-k


@njit(cache=True)
def _is_window_max(heat, y, x, pad):
    v = heat[y, x]
    h, w = heat.shape
    for yy in range(max(y - pad, 0), min(y + pad + 1, h)):
        for xx in range(max(x - pad, 0), min(x + pad + 1, w)):
            if heat[yy, xx] > v:
                return False
    return True


@njit(cache=True)
def _count_above(row, threshold):
    count = 0
    for x in range(row.shape[0]):
        count += row[x] > threshold
    return count


@njit(cache=True)
def _scan_row(heat, y, pad, index, value, filled):
    """One row of the top-len(index) NMS values of an (H, W) map, ties by lower flat index. Rows must be
    scanned in order, with rows y-pad..y+pad final; returns how many of index/value are filled.

    Pixels come in flat-index order, so a newcomer never beats an equal incumbent. Once the list is full
    with a k-th value >= 0, a pixel not above it cannot enter whether its window keeps it (value <= k-th) or
    not (0 <= k-th): such pixels, and whole chunks of them, are skipped without looking at windows.
    """
    w = heat.shape[1]
    m = index.shape[0]
    row = heat[y]
    for start in range(0, w, _CHUNK):
        stop = min(start + _CHUNK, w)
        threshold = value[m - 1] if filled == m else _ZERO
        if filled == m and threshold >= _ZERO and _count_above(row[start:stop], threshold) == 0:
            continue
        for x in range(start, stop):
            v = row[x]
            if filled == m and v <= threshold and threshold >= _ZERO:
                continue
            if v != _ZERO and _is_window_max(heat, y, x, pad):
                candidate = v
            else:
                candidate = _ZERO  # suppressed, or -0.0 made +0.0
            if filled == m:
                if not candidate > threshold:
                    continue
                slot = m - 1
            else:
                slot = filled
                filled += 1
            while slot > 0 and value[slot - 1] < candidate:
                value[slot] = value[slot - 1]
                index[slot] = index[slot - 1]
                slot -= 1
            value[slot] = candidate
            index[slot] = y * w + x
            if filled == m:
                threshold = value[m - 1]
    return filled


@njit(cache=True)
def _band_max(row, band, start):
    """band = row (start of a band of TILE rows) or the elementwise max of band and row."""
    if start:
        for x in range(row.shape[0]):
            band[x] = row[x]
    else:
        for x in range(row.shape[0]):
            band[x] = row[x] if row[x] > band[x] else band[x]


@njit(cache=True)
def _close_band(band, tiles):
    """tiles[tx] = max of band over columns tx*TILE .. tx*TILE + TILE - 1."""
    w = band.shape[0]
    for tx in range(tiles.shape[0]):
        best = band[tx * TILE]
        for x in range(tx * TILE + 1, min(tx * TILE + TILE, w)):
            best = band[x] if band[x] > best else best
        tiles[tx] = best


# ----------------------------------------------------------------------------------------- one scale


@njit(cache=True, parallel=True)
def _aggregate_scale(
    out0, out1, out0_flip, out1_flip, with_flip, flip_index, q_rows, q_cols, h_rows, h_cols,
    heatmaps, half_tags, first, with_tags, divisor, finish, pad, cand_index, cand_value, tile_max,
):
    """Adds one scale's heatmaps to `heatmaps` (or sets them when `first`) and writes its half-resolution tags
    (K, L, h2, w2) when `with_tags`; when `finish`, divides by `divisor` (> 0 only with several scales),
    extracts the candidates and the tile maxima."""
    k_joints, h2, w2 = out1.shape
    for k in prange(k_joints):
        heat_plain = np.empty((h2, w2), np.float32)
        heat_flip = np.empty((h2, w2), np.float32)
        _half_pass(out0, out1, k, k_joints, q_rows, q_cols, False, with_tags, heat_plain, half_tags[k, 0])
        if with_flip:
            _half_pass(
                out0_flip, out1_flip, flip_index[k], k_joints, q_rows, q_cols, True, with_tags,
                heat_flip, half_tags[k, half_tags.shape[1] - 1],
            )
        _project_joint(
            heat_plain, heat_flip, with_flip, h_rows, h_cols, first, divisor, heatmaps[k],
            finish, pad, cand_index[k], cand_value[k], tile_max[k],
        )


@njit(cache=True, parallel=True)
def _top_k_maps(heatmaps, pad, index, value):
    for k in prange(heatmaps.shape[0]):
        filled = 0
        for y in range(heatmaps.shape[1]):
            filled = _scan_row(heatmaps[k], y, pad, index[k], value[k], filled)


def top_k_numba(heatmaps: np.ndarray, max_people: int = 30, nms_kernel: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """NMS + top-k of given (K, H, W) maps, the Numba twin of `aggregate_ref.top_candidates` (which the
    aggregation fuses into its projection): flat indices int64 (K, M) and values float32 (K, M)."""
    heatmaps = np.ascontiguousarray(heatmaps, dtype=_F32)
    k, h, w = heatmaps.shape
    check_nms(h, w, max_people, nms_kernel)
    index = np.empty((k, max_people), np.int64)
    value = np.empty((k, max_people), _F32)
    _top_k_maps(heatmaps, nms_kernel // 2, index, value)
    return index, value


@njit(cache=True, parallel=True)
def _sample_tags(half_tags, rows, cols, ys, xs, out):
    """out[k, i, l] = full-resolution tag l of joint k at (ys[k, i], xs[k, i])."""
    for k in prange(ys.shape[0]):
        for i in range(ys.shape[1]):
            for dim in range(half_tags.shape[1]):
                out[k, i, dim] = _tag_at(half_tags[k, dim], rows, cols, ys[k, i], xs[k, i])


@njit(cache=True, parallel=True)
def _project_all_tags(half_tags, rows, cols, out):
    """Full-resolution tag maps out (K, H, W, L), pixel by pixel (a slow path for tests and debugging)."""
    for k in prange(out.shape[0]):
        for y in range(out.shape[1]):
            for x in range(out.shape[2]):
                for dim in range(out.shape[3]):
                    out[k, y, x, dim] = _tag_at(half_tags[k, dim], rows, cols, y, x)


# ------------------------------------------------------------------------------------------------ refine


@njit(cache=True, parallel=True)
def _refine(heatmaps, half_tags, rows, cols, tile_max, tile_order, mean_tags, best_index):
    """Per person and joint, the first row-major argmax of heatmap - rint(||tag - mean||) (see
    aggregate_ref.refine_peaks). Tiles are visited from the highest heatmap maximum down, and the scan stops
    at a tile whose maximum is below the best score: score <= heatmap there, so no later pixel can reach it.
    Out-of-order tiles are why equal scores compare flat indices."""
    k_joints, h, w = heatmaps.shape
    tiles_x = tile_max.shape[2]
    n, tag_dim = mean_tags.shape
    for job in prange(n * k_joints):
        person, k = job // k_joints, job % k_joints
        best = np.float32(-np.inf)
        best_at = h * w
        for t in range(tile_order.shape[1]):
            tile = tile_order[k, t]
            ty, tx = tile // tiles_x, tile % tiles_x
            if tile_max[k, ty, tx] < best:
                break
            for y in range(ty * TILE, min(ty * TILE + TILE, h)):
                for x in range(tx * TILE, min(tx * TILE + TILE, w)):
                    d = _tag_at(half_tags[k, 0], rows, cols, y, x) - mean_tags[person, 0]
                    squared = d * d
                    for dim in range(1, tag_dim):
                        d = _tag_at(half_tags[k, dim], rows, cols, y, x) - mean_tags[person, dim]
                        squared = squared + d * d
                    score = heatmaps[k, y, x] - np.rint(np.sqrt(squared))
                    at = y * w + x
                    if score > best or (score == best and at < best_at):
                        best = score
                        best_at = at
        best_index[person, k] = best_at


# ------------------------------------------------------------------------------------------------ API


@dataclass(frozen=True)
class NumbaAggregation:
    """What the CPU path hands to grouping: the candidates, and what refine needs.

    Attributes:
        candidates: top-M NMS peaks per joint, with tags and adjust neighbours (see `Candidates`).
        heatmaps: float32 (K, H, W) aggregated heatmaps at the network-input size.
        half_tags: float32 (K, L, H/2', W/2') the scale-1 tags at half resolution (plain, then flipped), whose
            projection is the full-resolution tag map.
        tile_max: float32 (K, ceil(H/TILE), ceil(W/TILE)) heatmap maximum per tile (refine's pruning).
    """

    candidates: Candidates
    heatmaps: np.ndarray
    half_tags: np.ndarray
    tile_max: np.ndarray
    _rows: tuple = field(repr=False)
    _cols: tuple = field(repr=False)

    def refine(self, mean_tags: np.ndarray) -> RefinePeaks:
        """Refine peaks for persons with mean tags (N, L); equals `aggregate_ref.refine_peaks` on `maps()`."""
        mean_tags = check_mean_tags(mean_tags, self.half_tags.shape[1])
        k = self.heatmaps.shape[0]
        best = np.zeros((mean_tags.shape[0], k), np.int64)
        if len(mean_tags):
            order = np.argsort(-self.tile_max.reshape(k, -1), axis=1, kind="stable")
            _refine(self.heatmaps, self.half_tags, self._rows, self._cols, self.tile_max, order, mean_tags, best)
        return refine_result(self.heatmaps, best)

    def maps(self) -> AggregatedMaps:
        """The full AggregatedMaps (tags projected pixel by pixel: slow, for tests and debugging)."""
        k, h, w = self.heatmaps.shape
        tags = np.empty((k, h, w, self.half_tags.shape[1]), _F32)
        _project_all_tags(self.half_tags, self._rows, self._cols, tags)
        return AggregatedMaps(heatmaps=self.heatmaps, tags=tags)


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
    """
    ordered, tag_position, index = validate_scales(scales, flip_index, base_hw)
    k = ordered[0].num_joints
    h, w = int(base_hw[0]), int(base_hw[1])
    with_flip = index is not None
    heatmaps = _heatmap_buffer(heatmaps_out, (k, h, w))
    check_nms(h, w, max_people, nms_kernel)
    tag_hw = ordered[tag_position].half_hw
    half_tags = np.empty((k, 2 if with_flip else 1) + tag_hw, _F32)
    tile_max = np.empty((k, -(-h // TILE), -(-w // TILE)), _F32)
    cand_index = np.empty((k, max_people), np.int64)
    cand_value = np.empty((k, max_people), _F32)
    flip = index if with_flip else np.zeros(k, np.int64)
    divisor = _F32(len(ordered)) if len(ordered) > 1 else _ZERO
    for position, scale in enumerate(ordered):
        out0, out1 = scale.outputs
        out0_flip, out1_flip = scale.flipped if with_flip else scale.outputs
        (h4, w4), (h2, w2) = scale.quarter_hw, scale.half_hw
        last = position == len(ordered) - 1
        _aggregate_scale(
            out0, out1, out0_flip, out1_flip, with_flip, flip,
            _row_tables(h4, h2), _column_plan(w4, w2), _row_tables(h2, h), _column_plan(w2, w),
            heatmaps, half_tags, position == 0, position == tag_position,
            divisor if last else _ZERO, last, nms_kernel // 2, cand_index, cand_value, tile_max,
        )
    rows, cols = _row_tables(tag_hw[0], h), _row_tables(tag_hw[1], w)
    x = (cand_index % w).astype(np.int32)
    y = (cand_index // w).astype(np.int32)
    tags = np.empty((k, max_people, half_tags.shape[1]), _F32)
    _sample_tags(half_tags, rows, cols, y, x, tags)
    candidates = Candidates(
        x=x, y=y, value=cand_value, tags=tags, neighbours=adjust_neighbours(heatmaps, np.arange(k)[:, None], y, x)
    )
    return NumbaAggregation(candidates, heatmaps, half_tags, tile_max, rows, cols)


def _heatmap_buffer(out: np.ndarray | None, shape: tuple[int, int, int]) -> np.ndarray:
    if out is None:
        return np.empty(shape, _F32)
    if out.shape != shape or out.dtype != _F32 or not out.flags.c_contiguous:
        raise PoseStreamError(f"heatmaps_out must be float32 C-contiguous {shape}, got {out.dtype} {out.shape}")
    return out
