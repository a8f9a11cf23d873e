"""The refine search on the CPU (Numba): equal to `aggregate_ref.refine_peaks` on every input.

For each person's mean tag and each joint asked for: the first row-major argmax of
heatmap - rint(||tag - mean tag||). Tags are never held at full resolution: they are read through bilinear
tables from source planes (`bilinear_numba.value_at`), which gives exactly the full-resolution value. The
aggregation hands over its half-resolution tags with the projection's tables; full tag maps (grouping tests,
`group_numba.group`) come with identity tables.

The search visits only what can win. Per TILE x TILE tile the frame's summaries bound every score in it:
score = heat - rint(distance) <= hottest heat - rint(distance from the mean tag to the tile's tag range).
Tag ranges come from the source pixels a tile's pixels read (bilinear values lie between their sources up
to a few float32 roundings, which the bound allows for). Tiles are grouped into blocks of BLOCK x BLOCK
tiles with the same summaries: a search ranks the blocks by bound and scans, block by block, the tiles whose
bound can still reach the best score so far; it stops at the first block that cannot. The candidates of the
joint give a first true score. Equal scores go to the lower flat index, whatever the visiting order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numba import uint64 as _u

from pose_stream.kernels.aggregate_ref import check_mean_tags, refine_result
from pose_stream.kernels.bilinear_numba import fma, identity_tables, value_at
from pose_stream.kernels.types import AggregatedMaps, RefinePeaks

_F32 = np.float32
TILE = 16  # pixels per tile side (a speed setting: results do not depend on it)
BLOCK = 4  # tiles per block side
# Jitted functions of other modules that call the summaries take the tile size as an argument: Numba's
# cache of their module would keep a constant of this one.
# Bilinear values lie within their sources' range up to about 6 float32 roundings of the largest magnitude;
# the bound widens ranges by far more, and shrinks the distance for the float32 arithmetic of the score.
_RANGE_SLACK = 2.0**-18
_DISTANCE_SLACK = 2.0**-18
_ABSOLUTE_SLACK = 1e-12


# ------------------------------------------------------------------------------------ tile summaries


@njit(cache=True, nogil=True)
def band_max(row, band, start):
    """band = row (the first row of a band of tile rows) or the elementwise max of band and row."""
    if start:
        for x in range(row.shape[0]):
            band[x] = row[x]
    else:
        for x in range(row.shape[0]):
            band[x] = row[x] if row[x] > band[x] else band[x]


@njit(cache=True, nogil=True)
def close_band(band, tile, tiles):
    """tiles[tx] = max of band over columns tx*tile .. tx*tile + tile - 1."""
    w = band.shape[0]
    for tx in range(tiles.shape[0]):
        best = band[tx * tile]
        for x in range(tx * tile + 1, min(tx * tile + tile, w)):
            best = band[x] if band[x] > best else best
        tiles[tx] = best


@njit(cache=True, nogil=True)
def tile_heat_max(heat, tiles):
    """tiles (ceil(H/TILE), ceil(W/TILE)): the largest value of each tile of one (H, W) heatmap."""
    h = heat.shape[0]
    band = np.empty(heat.shape[1], np.float32)
    for y in range(h):
        band_max(heat[y], band, y % TILE == 0)
        if y % TILE == TILE - 1 or y == h - 1:
            close_band(band, TILE, tiles[y // TILE])


@njit(cache=True, nogil=True)
def tag_ranges(plane, rows, cols, tile, lo, hi):
    """lo, hi (ceil(H/tile), ceil(W/tile)): min and max of the source pixels of `plane` (h, w) that the
    pixels of each tile x tile output tile read through the tables rows (H entries) and cols (W entries).

    The tables' indices only grow with the output index, so a tile reads source rows i0[first]..i1[last].
    Rows first (contiguous, vectorised), then columns on the reduced rows.
    """
    tiles_y, tiles_x = lo.shape
    big_h, big_w = rows[0].shape[0], cols[0].shape[0]
    width = plane.shape[1]
    low = np.empty(width, np.float32)
    high = np.empty(width, np.float32)
    for ty in range(tiles_y):
        first, last = ty * tile, min(ty * tile + tile, big_h) - 1
        r_lo, r_hi = rows[0][first], max(rows[0][last], rows[1][last])
        source = plane[r_lo]
        for c in range(width):
            low[c] = source[c]
            high[c] = source[c]
        for r in range(r_lo + 1, r_hi + 1):
            source = plane[r]
            for c in range(width):
                v = source[c]
                low[c] = v if v < low[c] else low[c]
                high[c] = v if v > high[c] else high[c]
        for tx in range(tiles_x):
            first, last = tx * tile, min(tx * tile + tile, big_w) - 1
            c_lo, c_hi = cols[0][first], max(cols[0][last], cols[1][last])
            a, b = low[c_lo], high[c_lo]
            for c in range(c_lo + 1, c_hi + 1):
                a = low[c] if low[c] < a else a
                b = high[c] if high[c] > b else b
            lo[ty, tx] = a
            hi[ty, tx] = b


@njit(cache=True, nogil=True)
def _blocks(heat_max, tag_lo, tag_hi, block_max, block_lo, block_hi):
    """Block summaries: the max of the tiles' heat maxima, the min / max of their tag ranges."""
    k_joints, tiles_y, tiles_x = heat_max.shape
    tag_dim = tag_lo.shape[1]
    for k in range(k_joints):
        for by in range(block_max.shape[1]):
            for bx in range(block_max.shape[2]):
                ty0, tx0 = by * BLOCK, bx * BLOCK
                ty1, tx1 = min(ty0 + BLOCK, tiles_y), min(tx0 + BLOCK, tiles_x)
                best = heat_max[k, ty0, tx0]
                for ty in range(ty0, ty1):
                    for tx in range(tx0, tx1):
                        best = max(best, heat_max[k, ty, tx])
                block_max[k, by, bx] = best
                for d in range(tag_dim):
                    a, b = tag_lo[k, d, ty0, tx0], tag_hi[k, d, ty0, tx0]
                    for ty in range(ty0, ty1):
                        for tx in range(tx0, tx1):
                            a = min(a, tag_lo[k, d, ty, tx])
                            b = max(b, tag_hi[k, d, ty, tx])
                    block_lo[k, d, by, bx] = a
                    block_hi[k, d, by, bx] = b


# ------------------------------------------------------------------------------------------ search


@njit(cache=True, nogil=True, inline="always")
def _bound(hottest, lo, hi, k, ty, tx, mean):
    """The highest score a pixel can have in a region whose heat is at most `hottest` and whose tags lie in
    [lo[k, d, ty, tx], hi[k, d, ty, tx]] per dimension d (float32 arithmetic of the score included)."""
    gap = 0.0
    for d in range(mean.shape[0]):
        low, high = np.float64(lo[k, d, ty, tx]), np.float64(hi[k, d, ty, tx])
        slack = max(abs(low), abs(high)) * _RANGE_SLACK + 1e-30
        m = np.float64(mean[d])
        if m < low - slack:
            gap += (low - slack - m) ** 2
        elif m > high + slack:
            gap += (m - high - slack) ** 2
    distance = max(math.sqrt(gap) * (1.0 - _DISTANCE_SLACK) - _ABSOLUTE_SLACK, 0.0)
    return hottest - np.float32(np.rint(distance))


@njit(cache=True, nogil=True, inline="always")
def _score(heat, planes, k, rows, cols, y, x, mean):
    """heat - rint(||tag(y, x) - mean||) in float32, squared differences summed over L in order."""
    d = value_at(planes[k, 0], rows, cols, y, x) - mean[0]
    squared = d * d
    for dim in range(1, mean.shape[0]):
        d = value_at(planes[k, dim], rows, cols, y, x) - mean[dim]
        squared = squared + d * d
    return heat - np.rint(np.sqrt(squared))


@njit(cache=True, nogil=True)
def _fill_tile(heatmaps, planes, k, rows, cols, ty, tx, across, out):
    """out (1 + L, TILE * TILE): the heat of one tile (row-major; -inf outside the map, so it never wins)
    and its tags (0 outside), the tags separably: the horizontal pass on the source rows the tile reads,
    then the vertical one, per pixel the very operations of `value_at`. across: (>= rows read, TILE)."""
    big_h, big_w = heatmaps.shape[1], heatmaps.shape[2]
    y0, x0 = ty * TILE, tx * TILE
    ny, nx = min(TILE, big_h - y0), min(TILE, big_w - x0)
    if ny < TILE or nx < TILE:
        out[0, :] = -np.inf
        out[1:, :] = 0.0
    heat = out[0]
    for yy in range(ny):
        src = heatmaps[k, y0 + yy]
        for xx in range(nx):
            heat[_u(yy * TILE + xx)] = src[_u(x0 + xx)]
    r_lo = rows[0][y0]
    r_hi = max(rows[0][y0 + ny - 1], rows[1][y0 + ny - 1])
    c0, c1, l0, l1 = cols
    for dim in range(planes.shape[1]):
        plane = planes[k, dim]
        for r in range(r_lo, r_hi + 1):
            src = plane[r]
            line = across[r - r_lo]
            for xx in range(nx):
                x = _u(x0 + xx)
                line[_u(xx)] = fma(src[_u(c0[x])], l0[x], src[_u(c1[x])] * l1[x])
        dst = out[1 + dim]
        for yy in range(ny):
            y = y0 + yy
            upper, lower = across[rows[0][y] - r_lo], across[rows[1][y] - r_lo]
            m0, m1 = rows[2][y], rows[3][y]
            for xx in range(nx):
                dst[_u(yy * TILE + xx)] = fma(upper[_u(xx)], m0, lower[_u(xx)] * m1)


@njit(cache=True, nogil=True)
def _rows_read(rows):
    """The most source rows a tile reads through the tables `rows`."""
    big_h = rows[0].shape[0]
    most = 0
    for y0 in range(0, big_h, TILE):
        last = min(y0 + TILE, big_h) - 1
        most = max(most, max(rows[0][last], rows[1][last]) - rows[0][y0] + 1)
    return most


@njit(cache=True, nogil=True)
def _cached_tile(heatmaps, planes, k, rows, cols, t, tiles_x, slot, pool, used, across):
    """Heat and tags (1 + L, TILE * TILE) of tile t, filled on first use into a pool shared by the people
    searching one joint: slot (TY * TX,) the pool entry of each tile (-1: none yet), pool (capacity, 1 + L,
    TILE * TILE) with `used` entries taken. Returns the tile, the pool (grown when full) and its use."""
    if slot[t] < 0:
        if used == pool.shape[0]:
            bigger = np.empty((2 * pool.shape[0],) + pool.shape[1:], np.float32)
            bigger[:used] = pool
            pool = bigger
        _fill_tile(heatmaps, planes, k, rows, cols, t // tiles_x, t % tiles_x, across, pool[used])
        slot[t] = used
        used += 1
    return pool[slot[t]], pool, used


@njit(cache=True, nogil=True, fastmath={"nnan", "nsz"})
def _largest(values):
    """max(values): scores are never NaN (finite tags; heat finite or -inf), and which zero comes out does
    not matter (the first pixel equal to it is taken), so the reduction may vectorise."""
    best = values[0]
    for i in range(values.shape[0]):
        best = max(best, values[i])
    return best


@njit(cache=True, nogil=True)
def _scan_tile(tile, ty, tx, big_w, mean, top, top_at, scores):
    """Best (score, flat index) of one tile (`_fill_tile`), starting from top / top_at: all its scores at
    once, branch-free (vectorised), then their first maximum (row-major in a tile is flat-index order)."""
    n = scores.shape[0]
    values = tile[1]
    m = mean[0]
    for i in range(n):
        d = values[i] - m
        scores[i] = d * d
    for dim in range(1, mean.shape[0]):
        values = tile[1 + dim]
        m = mean[dim]
        for i in range(n):
            d = values[i] - m
            scores[i] = scores[i] + d * d
    heat = tile[0]
    for i in range(n):
        scores[i] = heat[i] - np.rint(np.sqrt(scores[i]))
    best = _largest(scores)
    if best < top:
        return top, top_at
    for i in range(n):
        if scores[i] == best:
            at = (ty * TILE + i // TILE) * big_w + tx * TILE + i % TILE
            if best > top or at < top_at:
                return best, at
            break
    return top, top_at


@njit(cache=True, nogil=True)
def _search(heatmaps, planes, rows, cols, heat_max, tag_lo, tag_hi, block_max, block_lo, block_hi, seeds, k, mean,
            slot, pool, used, across, scores):
    """The flat index of the first row-major argmax of joint k's score for one mean tag (and the tile cache,
    see `_cached_tile`; across, scores: scratch)."""
    big_h, big_w = heatmaps.shape[1], heatmaps.shape[2]
    tiles_y, tiles_x = heat_max.shape[1], heat_max.shape[2]
    blocks_y, blocks_x = block_max.shape[1], block_max.shape[2]
    top = np.float32(-np.inf)
    top_at = big_h * big_w
    for m in range(seeds.shape[1]):
        at = seeds[k, m]
        y = at // big_w
        x = at - y * big_w
        score = _score(heatmaps[k, y, x], planes, k, rows, cols, y, x, mean)
        if score > top or (score == top and at < top_at):
            top = score
            top_at = at
    # blocks that can still reach the best, by bound, highest first (insertion: few are open)
    bounds = np.empty(blocks_y * blocks_x, np.float32)
    ids = np.empty(blocks_y * blocks_x, np.int64)
    n_open = 0
    for b in range(blocks_y * blocks_x):
        by, bx = b // blocks_x, b % blocks_x
        bound = _bound(block_max[k, by, bx], block_lo, block_hi, k, by, bx, mean)
        if bound < top:
            continue
        q = n_open
        while q > 0 and bounds[q - 1] < bound:
            bounds[q] = bounds[q - 1]
            ids[q] = ids[q - 1]
            q -= 1
        bounds[q] = bound
        ids[q] = b
        n_open += 1
    for q in range(n_open):
        if bounds[q] < top:
            break
        by, bx = ids[q] // blocks_x, ids[q] % blocks_x
        for ty in range(by * BLOCK, min(by * BLOCK + BLOCK, tiles_y)):
            for tx in range(bx * BLOCK, min(bx * BLOCK + BLOCK, tiles_x)):
                bound = _bound(heat_max[k, ty, tx], tag_lo, tag_hi, k, ty, tx, mean)
                first = ty * TILE * big_w + tx * TILE
                # a tile whose bound only ties the best matters only if it holds an earlier pixel
                if bound > top or (bound == top and first < top_at):
                    tile, pool, used = _cached_tile(heatmaps, planes, k, rows, cols, ty * tiles_x + tx, tiles_x, slot,
                                                    pool, used, across)
                    top, top_at = _scan_tile(tile, ty, tx, big_w, mean, top, top_at, scores)
    return top_at, pool, used


@njit(cache=True, nogil=True, parallel=True)
def _search_jobs(heatmaps, planes, rows, cols, heat_max, tag_lo, tag_hi, block_max, block_lo, block_hi, seeds,
                 mean_tags, joints, starts, job_person, best):
    """Jobs grouped by joint: joints[i]'s are job_person[starts[i]:starts[i + 1]]. One joint per task, so
    the tags of a tile are computed once for all the people searching that joint."""
    tiles = heat_max.shape[1] * heat_max.shape[2]
    for i in prange(joints.shape[0]):
        k = joints[i]
        slot = np.full(tiles, -1, np.int64)
        pool = np.empty((16, 1 + planes.shape[1], TILE * TILE), np.float32)
        used = 0
        across = np.empty((_rows_read(rows), TILE), np.float32)
        scores = np.empty(TILE * TILE, np.float32)
        for job in range(starts[i], starts[i + 1]):
            best[job], pool, used = _search(heatmaps, planes, rows, cols, heat_max, tag_lo, tag_hi, block_max,
                                            block_lo, block_hi, seeds, k, mean_tags[job_person[job]], slot, pool,
                                            used, across, scores)


# --------------------------------------------------------------------------------------------- API


@dataclass(frozen=True)
class RefineMaps:
    """One frame's maps as refine reads them. Shapes: K joints, L tag dimensions, H x W the network input,
    h x w the tag planes, TY x TX = ceil(H/TILE) x ceil(W/TILE) tiles.

    Attributes:
        heatmaps: float32 (K, H, W) aggregated heatmaps.
        tag_planes: float32 (K, L, h, w) tag sources; the tag map of dimension d is their resize by `rows`
            and `cols` (bilinear tables with H and W entries, `aggregate_ref.axis_weights`).
        rows, cols: (i0, i1, l0, l1) tables.
        heat_max: float32 (K, TY, TX) the largest heat of each tile.
        tag_lo, tag_hi: float32 (K, L, TY, TX) `tag_ranges` of each tile.
        seeds: int64 (K, M) flat pixel indices to score first (the candidates; any pixels will do).
    """

    heatmaps: np.ndarray
    tag_planes: np.ndarray
    rows: tuple
    cols: tuple
    heat_max: np.ndarray
    tag_lo: np.ndarray
    tag_hi: np.ndarray
    seeds: np.ndarray

    @property
    def tag_dim(self) -> int:
        return int(self.tag_planes.shape[1])


def tile_shape(h: int, w: int) -> tuple[int, int]:
    return -(-h // TILE), -(-w // TILE)


def refine_maps_from_full(maps: AggregatedMaps, seeds: np.ndarray | None = None) -> RefineMaps:
    """RefineMaps over full-resolution AggregatedMaps (their tags as planes, identity tables)."""
    heatmaps = np.ascontiguousarray(maps.heatmaps, dtype=_F32)
    k, h, w = heatmaps.shape
    planes = np.ascontiguousarray(np.moveaxis(np.asarray(maps.tags, dtype=_F32), 3, 1))
    rows, cols = identity_tables(h), identity_tables(w)
    heat_max = np.empty((k,) + tile_shape(h, w), _F32)
    tag_lo = np.empty((k, planes.shape[1]) + tile_shape(h, w), _F32)
    tag_hi = np.empty_like(tag_lo)
    for joint in range(k):
        tile_heat_max(heatmaps[joint], heat_max[joint])
        for dim in range(planes.shape[1]):
            tag_ranges(planes[joint, dim], rows, cols, TILE, tag_lo[joint, dim], tag_hi[joint, dim])
    seeds = np.zeros((k, 0), np.int64) if seeds is None else np.ascontiguousarray(seeds, dtype=np.int64)
    return RefineMaps(heatmaps, planes, rows, cols, heat_max, tag_lo, tag_hi, seeds)


def refine_search(maps: RefineMaps, mean_tags: np.ndarray, pending: np.ndarray | None = None) -> RefinePeaks:
    """`aggregate_ref.refine_peaks` for persons with mean tags (N, L), searching only where pending (N, K)
    is True (all joints when None); entries not searched are zeros."""
    mean_tags = check_mean_tags(mean_tags, maps.tag_dim)
    k = maps.heatmaps.shape[0]
    n = mean_tags.shape[0]
    pending = np.ones((n, k), bool) if pending is None else np.asarray(pending, bool)
    if pending.shape != (n, k):
        raise ValueError(f"pending must be ({n}, {k}), got {pending.shape}")
    joint, person = np.nonzero(pending.T)  # jobs grouped by joint
    best = np.zeros(person.shape[0], np.int64)
    if person.size:
        joints, starts = np.unique(joint, return_index=True)
        starts = np.append(starts, person.size)
        block_shape = (k, -(-maps.heat_max.shape[1] // BLOCK), -(-maps.heat_max.shape[2] // BLOCK))
        block_max = np.empty(block_shape, _F32)
        block_lo = np.empty((k, maps.tag_dim) + block_shape[1:], _F32)
        block_hi = np.empty_like(block_lo)
        _blocks(maps.heat_max, maps.tag_lo, maps.tag_hi, block_max, block_lo, block_hi)
        _search_jobs(maps.heatmaps, maps.tag_planes, maps.rows, maps.cols, maps.heat_max, maps.tag_lo,
                     maps.tag_hi, block_max, block_lo, block_hi, maps.seeds, mean_tags, joints, starts, person, best)
    flat = np.zeros((n, k), np.int64)
    flat[person, joint] = best
    return refine_result(maps.heatmaps, flat, pending)
