"""Full-resolution tag maps held as what they are computed from, with exact values on demand (Numba).

The aggregation never writes tag maps (K x H x W x L floats, 67 MB per frame at 512x960 with flip): the
tag map of joint k, dimension d, is the network's quarter-resolution tag channel planes[d][channel[k, d]],
resized to half resolution (tables q_rows, q_cols), mirrored left-right for the flipped pass, resized to
full resolution (tables rows, cols): exactly `aggregate_ref.aggregate_maps`. Any value of it is computed
here with the very float32 operations of that pipeline (`bilinear_numba`), so it equals the full map's.
Full tag maps (tests, `group_numba.group`) are a TagSource too, with identity tables.

Reading is by tile (a TILE x TILE block of the full map, computed separably) or by pixel; per tile, the
range of the source values a tile reads bounds its tags (`tile_tag_ranges`, used by refine).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numba import uint64 as _u

from pose_stream.decoding.bilinear_numba import fma, identity_tables

_F32 = np.float32


@dataclass(frozen=True)
class TagSource:
    """Tag maps (K, H, W, L) as their sources. Tables are `aggregate_ref.axis_weights` (i0, i1, l0, l1).

    Attributes:
        planes: L float32 C-contiguous arrays (C, hq, wq) (the same shape), the sources of each dimension.
        channel: int64 (K, L) the plane channel of joint k, dimension d.
        mirrored: bool (L,) dimensions whose half-resolution map is mirrored left-right (the flipped pass).
        q_rows, q_cols: hq -> h2 and wq -> w2 tables (h2 and w2 entries).
        rows, cols: h2 -> H and w2 -> W tables (H and W entries).
    """

    planes: tuple[np.ndarray, ...]
    channel: np.ndarray
    mirrored: np.ndarray
    q_rows: tuple
    q_cols: tuple
    rows: tuple
    cols: tuple

    @property
    def tag_dim(self) -> int:
        return len(self.planes)

    @property
    def num_joints(self) -> int:
        return int(self.channel.shape[0])

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.rows[0].shape[0]), int(self.cols[0].shape[0])

    @property
    def stages(self) -> tuple:
        return self.q_rows, self.q_cols, self.rows, self.cols

    @classmethod
    def from_maps(cls, tags: np.ndarray) -> "TagSource":
        """Full tag maps float32 (K, H, W, L) as a TagSource (copied per dimension, identity tables)."""
        k, h, w, tag_dim = tags.shape
        planes = tuple(np.ascontiguousarray(tags[..., d], dtype=_F32) for d in range(tag_dim))
        channel = np.tile(np.arange(k, dtype=np.int64)[:, None], (1, tag_dim))
        rows, cols = identity_tables(h), identity_tables(w)
        return cls(planes, channel, np.zeros(tag_dim, bool), rows, cols, rows, cols)

    def tile_spans(self, tile: int) -> tuple[np.ndarray, np.ndarray]:
        """Per tile row and column, the plane rows / columns [lo, hi] its pixels read: int64 (TY, 2) and
        (L, TX, 2) (columns depend on mirroring). Every table index only grows with its output index."""
        (h, w), w2 = self.hw, self.q_cols[0].shape[0]
        first_y = np.arange(0, h, tile)
        last_y = np.minimum(first_y + tile, h) - 1
        r_lo, r_hi = self.rows[0][first_y], np.maximum(self.rows[0][last_y], self.rows[1][last_y])
        row_span = np.stack([self.q_rows[0][r_lo], np.maximum(self.q_rows[0][r_hi], self.q_rows[1][r_hi])], -1)
        first_x = np.arange(0, w, tile)
        last_x = np.minimum(first_x + tile, w) - 1
        c_lo, c_hi = self.cols[0][first_x], np.maximum(self.cols[0][last_x], self.cols[1][last_x])
        col_spans = []
        for mirrored in self.mirrored:
            u_lo, u_hi = (w2 - 1 - c_hi, w2 - 1 - c_lo) if mirrored else (c_lo, c_hi)
            col_spans.append(np.stack([self.q_cols[0][u_lo], np.maximum(self.q_cols[0][u_hi], self.q_cols[1][u_hi])], -1))
        return row_span.astype(np.int64), np.stack(col_spans).astype(np.int64)

    def tile_windows(self, tile: int) -> tuple[np.ndarray, np.ndarray, int]:
        """What `block_range` needs per plane: the row spans (TY, 2), per dimension the column spans with
        their two covering windows (L, TX, 4) (`_windows`), and the doubling levels the windows use."""
        row_span, col_spans = self.tile_spans(tile)
        longest = int((col_spans[..., 1] - col_spans[..., 0]).max()) + 1
        return row_span, _windows(col_spans), longest.bit_length()

    def scratch_shape(self, tile: int) -> tuple[int, int, int]:
        """(plane rows, half rows, half columns) the largest tile reads: the sizes `fill_tile` works in."""
        (h, w) = self.hw
        first_y = np.arange(0, h, tile)
        last_y = np.minimum(first_y + tile, h) - 1
        r_lo, r_hi = self.rows[0][first_y], np.maximum(self.rows[0][last_y], self.rows[1][last_y])
        q_lo, q_hi = self.q_rows[0][r_lo], np.maximum(self.q_rows[0][r_hi], self.q_rows[1][r_hi])
        first_x = np.arange(0, w, tile)
        last_x = np.minimum(first_x + tile, w) - 1
        c_lo, c_hi = self.cols[0][first_x], np.maximum(self.cols[0][last_x], self.cols[1][last_x])
        return int((q_hi - q_lo).max()) + 1, int((r_hi - r_lo).max()) + 1, int((c_hi - c_lo).max()) + 1


# ------------------------------------------------------------------------------------------- pixels


@njit(cache=True, nogil=True, inline="always")
def _half_value(plane, mirrored, q_rows, q_cols, r, c):
    """Half-resolution value (r, c) of one plane: the quarter -> half resize (horizontal pass first) of
    column c, or of column w2-1-c when mirrored."""
    if mirrored:
        c = q_cols[0].shape[0] - 1 - c
    c0, c1, l0, l1 = q_cols[0][c], q_cols[1][c], q_cols[2][c], q_cols[3][c]
    r0, r1 = q_rows[0][r], q_rows[1][r]
    upper = fma(plane[r0, c0], l0, plane[r0, c1] * l1)
    lower = fma(plane[r1, c0], l0, plane[r1, c1] * l1)
    return fma(upper, q_rows[2][r], lower * q_rows[3][r])


@njit(cache=True, nogil=True)
def tag_value(plane, mirrored, stages, y, x):
    """Full-resolution tag (y, x) of one plane (C, hq, wq)[channel] of a TagSource."""
    q_rows, q_cols, rows, cols = stages
    r0, r1, c0, c1 = rows[0][y], rows[1][y], cols[0][x], cols[1][x]
    upper = fma(_half_value(plane, mirrored, q_rows, q_cols, r0, c0), cols[2][x],
                _half_value(plane, mirrored, q_rows, q_cols, r0, c1) * cols[3][x])
    lower = fma(_half_value(plane, mirrored, q_rows, q_cols, r1, c0), cols[2][x],
                _half_value(plane, mirrored, q_rows, q_cols, r1, c1) * cols[3][x])
    return fma(upper, rows[2][y], lower * rows[3][y])


@njit(cache=True, nogil=True)
def sample_tags(planes, channel, mirrored, stages, ys, xs, out):
    """out (K, M, L): the tags of joint k at (ys[k, i], xs[k, i])."""
    for k in range(ys.shape[0]):
        for i in range(ys.shape[1]):
            for dim in range(len(planes)):
                out[k, i, dim] = tag_value(planes[dim][channel[k, dim]], mirrored[dim], stages, ys[k, i], xs[k, i])


# -------------------------------------------------------------------------------------------- tiles


@njit(cache=True, nogil=True)
def fill_tile(planes, channel, mirrored, stages, k, ty, tx, tile, quarter, half, across, out):
    """out (L, tile * tile): the tags of joint k in tile (ty, tx), row-major, 0 outside the map; computed
    separably (quarter -> half horizontally then vertically, half -> full the same), which performs per pixel
    the operations of `tag_value`. quarter, half, across: scratch of at least `TagSource.scratch_shape`
    rows and max(half columns, tile) columns."""
    q_rows, q_cols, rows, cols = stages
    big_h, big_w = rows[0].shape[0], cols[0].shape[0]
    w2 = q_cols[0].shape[0]
    y0, x0 = ty * tile, tx * tile
    ny, nx = min(tile, big_h - y0), min(tile, big_w - x0)
    if ny < tile or nx < tile:
        out[:, :] = 0.0
    r_lo, r_hi = rows[0][y0], max(rows[0][y0 + ny - 1], rows[1][y0 + ny - 1])
    c_lo, c_hi = cols[0][x0], max(cols[0][x0 + nx - 1], cols[1][x0 + nx - 1])
    q_lo, q_hi = q_rows[0][r_lo], max(q_rows[0][r_hi], q_rows[1][r_hi])
    n_c = c_hi - c_lo + 1
    for dim in range(len(planes)):
        plane = planes[dim][channel[k, dim]]
        mirror = mirrored[dim]
        for q in range(q_lo, q_hi + 1):  # quarter -> half, horizontal, on the half columns the tile reads
            src = plane[q]
            line = quarter[q - q_lo]
            for i in range(n_c):
                u = w2 - 1 - (c_lo + i) if mirror else c_lo + i
                line[_u(i)] = fma(src[_u(q_cols[0][u])], q_cols[2][u], src[_u(q_cols[1][u])] * q_cols[3][u])
        for r in range(r_lo, r_hi + 1):  # quarter -> half, vertical
            upper, lower = quarter[q_rows[0][r] - q_lo], quarter[q_rows[1][r] - q_lo]
            m0, m1 = q_rows[2][r], q_rows[3][r]
            line = half[r - r_lo]
            for i in range(n_c):
                line[_u(i)] = fma(upper[_u(i)], m0, lower[_u(i)] * m1)
        for r in range(r_lo, r_hi + 1):  # half -> full, horizontal
            src = half[r - r_lo]
            line = across[r - r_lo]
            for xx in range(nx):
                x = _u(x0 + xx)
                line[_u(xx)] = fma(src[_u(cols[0][x] - c_lo)], cols[2][x], src[_u(cols[1][x] - c_lo)] * cols[3][x])
        dst = out[dim]
        for yy in range(ny):  # half -> full, vertical
            y = y0 + yy
            upper, lower = across[rows[0][y] - r_lo], across[rows[1][y] - r_lo]
            m0, m1 = rows[2][y], rows[3][y]
            for xx in range(nx):
                dst[_u(yy * tile + xx)] = fma(upper[_u(xx)], m0, lower[_u(xx)] * m1)


@njit(cache=True, nogil=True)
def block_range(plane, row_span, col_span, lo, hi, low, high):
    """lo, hi (TY, TX): min and max of plane over rows row_span[ty] x columns col_span[tx, :2] (inclusive;
    col_span[tx, 2:] = the level j and start of the second window, see `_windows`): the tile ranges of one
    plane (`TagSource.tile_windows` gives the spans).
    Per tile row: the rows' elementwise min / max (contiguous, vectorised) into low[0], high[0]; then
    low[j][c] = min of the 2^j columns from c (doubling, vectorised), so that any span of n columns is the
    min of two overlapping windows of the largest 2^j <= n. low, high: scratch (levels, wq) with
    2^(levels - 1) >= the longest column span."""
    width = plane.shape[1]
    levels = low.shape[0]
    for ty in range(row_span.shape[0]):
        source = plane[row_span[ty, 0]]
        low0, high0 = low[0], high[0]
        for c in range(width):
            low0[_u(c)] = source[_u(c)]
            high0[_u(c)] = source[_u(c)]
        for r in range(row_span[ty, 0] + 1, row_span[ty, 1] + 1):
            source = plane[r]
            for c in range(width):
                v = source[_u(c)]
                low0[_u(c)] = v if v < low0[_u(c)] else low0[_u(c)]
                high0[_u(c)] = v if v > high0[_u(c)] else high0[_u(c)]
        for j in range(1, levels):
            step = 1 << (j - 1)
            a_lo, b_lo, a_hi, b_hi = low[j - 1], low[j], high[j - 1], high[j]
            for c in range(width - step):
                u, v = a_lo[_u(c)], a_lo[_u(c + step)]
                b_lo[_u(c)] = v if v < u else u
                u, v = a_hi[_u(c)], a_hi[_u(c + step)]
                b_hi[_u(c)] = v if v > u else u
        for tx in range(col_span.shape[0]):
            j, first, second = col_span[tx, 2], col_span[tx, 0], col_span[tx, 3]
            lo[ty, tx] = min(low[j, first], low[j, second])
            hi[ty, tx] = max(high[j, first], high[j, second])


@njit(cache=True, nogil=True, parallel=True)
def _all_block_ranges(planes, channel, row_span, col_spans, levels, lo, hi):
    k_joints, tag_dim = channel.shape
    for job in prange(k_joints * tag_dim):
        k, dim = job // tag_dim, job % tag_dim
        low = np.empty((levels, planes[dim].shape[2]), np.float32)
        high = np.empty((levels, planes[dim].shape[2]), np.float32)
        block_range(planes[dim][channel[k, dim]], row_span, col_spans[dim], lo[k, dim], hi[k, dim], low, high)


def _windows(spans: np.ndarray) -> np.ndarray:
    """spans (..., 2) [first, last] -> (..., 4) [first, last, j, last - 2^j + 1] with 2^j the largest power
    of two <= the span's length: two windows of 2^j from first and from the second start cover the span."""
    length = spans[..., 1] - spans[..., 0] + 1
    j = np.floor(np.log2(length)).astype(np.int64)
    return np.concatenate([spans, j[..., None], (spans[..., 1] - (1 << j) + 1)[..., None]], axis=-1)


def tile_tag_ranges(source: TagSource, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Per joint, dimension and tile, the min and max of the source values the tile's tags are computed
    from: float32 (K, L, TY, TX) each. A tag lies within them up to a few float32 roundings of bilinear
    weights (relative 2^-20 or so of the largest magnitude), which a user of the ranges must allow for."""
    row_span, col_windows, levels = source.tile_windows(tile)
    shape = (source.num_joints, source.tag_dim, row_span.shape[0], col_windows.shape[1])
    lo, hi = np.empty(shape, _F32), np.empty(shape, _F32)
    _all_block_ranges(source.planes, source.channel, row_span, col_windows, levels, lo, hi)
    return lo, hi


@njit(cache=True, parallel=True)
def _project_all(planes, channel, mirrored, q_rows, q_cols, rows, cols, out):
    for k in prange(out.shape[0]):
        stages = (q_rows, q_cols, rows, cols)
        for y in range(out.shape[1]):
            for x in range(out.shape[2]):
                for dim in range(out.shape[3]):
                    out[k, y, x, dim] = tag_value(planes[dim][channel[k, dim]], mirrored[dim], stages, y, x)


def full_maps(source: TagSource) -> np.ndarray:
    """The tag maps float32 (K, H, W, L), pixel by pixel (slow: for tests and debugging)."""
    out = np.empty((source.num_joints,) + source.hw + (source.tag_dim,), _F32)
    _project_all(source.planes, source.channel, source.mirrored, *source.stages, out)
    return out
