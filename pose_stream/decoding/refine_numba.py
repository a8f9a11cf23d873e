"""The refine search on the CPU (Numba): equal to `aggregate_ref.refine_peaks` on every input.

For each person's mean tag and each joint asked for: the first row-major argmax of
heatmap - rint(||tag - mean tag||). Tags are never held at full resolution: the aggregation hands over its
`tag_source.TagSource` (the network's tag channels and the resize tables), whose tiles are computed on
demand with exactly the full maps' values; full tag maps (grouping tests, `group_numba.group`) are a
TagSource with identity tables.

The search visits only what can win. Per TILE x TILE tile the frame's summaries bound every score in it:
score = heat - rint(distance) <= hottest heat - rint(distance from the mean tag to the tile's tag range).
Tag ranges come from the source values a tile's tags are computed from (bilinear values lie between their
sources up to a few float32 roundings, which the bound allows for). Tiles are grouped into blocks of
BLOCK x BLOCK tiles with the same summaries: a search ranks the blocks by bound and scans, block by block,
the tiles whose bound can still reach the best score so far; it stops at the first block that cannot. The
candidates of the joint give a first true score. Equal scores go to the lower flat index, whatever the
visiting order. A tile's heat and tags are computed once per frame and joint, for all the people searching
that joint, and scored all at once (vectorised).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numba import uint64 as _u

from pose_stream.decoding.aggregate_ref import check_mean_tags, refine_result
from pose_stream.decoding.tag_source import TagSource, fill_tile, tile_tag_ranges
from pose_stream.decoding.types import AggregatedMaps, RefinePeaks

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
def tile_heat_max(heat, tile, tiles):
    """tiles (ceil(H/tile), ceil(W/tile)): the largest value of each tile of one (H, W) heatmap."""
    h = heat.shape[0]
    band = np.empty(heat.shape[1], np.float32)
    for y in range(h):
        band_max(heat[y], band, y % tile == 0)
        if y % tile == tile - 1 or y == h - 1:
            close_band(band, tile, tiles[y // tile])


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


@njit(cache=True, nogil=True)
def _cached_tile(heatmaps, planes, channel, mirrored, stages, k, t, tiles_x, slot, pool, used, quarter, half, across):
    """Heat and tags (1 + L, TILE * TILE) of tile t of joint k, filled on first use into a pool shared by the
    people searching one joint: slot (TY * TX,) the pool entry of each tile (-1: none yet), pool (capacity,
    1 + L, TILE * TILE) with `used` entries taken. Heat is -inf outside the map (it never wins). Returns the
    tile, the pool (grown when full) and its use."""
    if slot[t] < 0:
        if used == pool.shape[0]:
            bigger = np.empty((2 * pool.shape[0],) + pool.shape[1:], np.float32)
            bigger[:used] = pool
            pool = bigger
        out = pool[used]
        ty, tx = t // tiles_x, t % tiles_x
        big_h, big_w = heatmaps.shape[1], heatmaps.shape[2]
        y0, x0 = ty * TILE, tx * TILE
        ny, nx = min(TILE, big_h - y0), min(TILE, big_w - x0)
        heat = out[0]
        if ny < TILE or nx < TILE:
            heat[:] = -np.inf
        for yy in range(ny):
            src = heatmaps[k, y0 + yy]
            for xx in range(nx):
                heat[_u(yy * TILE + xx)] = src[_u(x0 + xx)]
        fill_tile(planes, channel, mirrored, stages, k, ty, tx, TILE, quarter, half, across, out[1:])
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
    """Best (score, flat index) of one tile (`_cached_tile`), starting from top / top_at: all its scores at
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
def _search(heatmaps, planes, channel, mirrored, stages, heat_max, tag_lo, tag_hi, block_max, block_lo, block_hi,
            seeds, seed_tags, k, mean, slot, pool, used, quarter, half, across, scores):
    """The flat index of the first row-major argmax of joint k's score for one mean tag, with the tile cache
    (see `_cached_tile`; quarter, half, across, scores: scratch)."""
    big_h, big_w = heatmaps.shape[1], heatmaps.shape[2]
    tiles_y, tiles_x = heat_max.shape[1], heat_max.shape[2]
    blocks_y, blocks_x = block_max.shape[1], block_max.shape[2]
    top = np.float32(-np.inf)
    top_at = big_h * big_w
    for m in range(seeds.shape[1]):
        at = seeds[k, m]
        d = seed_tags[k, m, 0] - mean[0]
        squared = d * d
        for dim in range(1, mean.shape[0]):
            d = seed_tags[k, m, dim] - mean[dim]
            squared = squared + d * d
        score = heatmaps[k, at // big_w, at % big_w] - np.rint(np.sqrt(squared))
        if score > top or (score == top and at < top_at):
            top = score
            top_at = at
    # blocks that can still reach the best, by bound, highest first (insertion: few are open)
    bounds = np.empty(blocks_y * blocks_x, np.float32)
    ids = np.empty(blocks_y * blocks_x, np.int64)
    n_open = 0
    for b in range(blocks_y * blocks_x):
        by, bx = b // blocks_x, b % blocks_x
        if block_max[k, by, bx] < top:
            continue  # the bound is at most the hottest heat: no need to work it out
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
                if heat_max[k, ty, tx] < top:
                    continue
                bound = _bound(heat_max[k, ty, tx], tag_lo, tag_hi, k, ty, tx, mean)
                first = ty * TILE * big_w + tx * TILE
                # a tile whose bound only ties the best matters only if it holds an earlier pixel
                if bound > top or (bound == top and first < top_at):
                    tile, pool, used = _cached_tile(heatmaps, planes, channel, mirrored, stages, k,
                                                    ty * tiles_x + tx, tiles_x, slot, pool, used, quarter, half, across)
                    top, top_at = _scan_tile(tile, ty, tx, big_w, mean, top, top_at, scores)
    return top_at, pool, used


@njit(cache=True, nogil=True, parallel=True)
def _search_jobs(heatmaps, planes, channel, mirrored, q_rows, q_cols, rows, cols, heat_max, tag_lo, tag_hi, block_max,
                 block_lo, block_hi, seeds, seed_tags, mean_tags, joints, starts, job_person, scratch, best):
    """Jobs grouped by joint: joints[i]'s are job_person[starts[i]:starts[i + 1]]. One joint per task, so
    a tile is computed once for all the people searching that joint. scratch: (plane rows, half rows, half
    columns) a tile reads at most."""
    tiles = heat_max.shape[1] * heat_max.shape[2]
    n_q, n_h, n_c = scratch
    for i in prange(joints.shape[0]):
        stages = (q_rows, q_cols, rows, cols)  # built here: a parallel loop takes no nested tuples
        k = joints[i]
        slot = np.full(tiles, -1, np.int64)
        pool = np.empty((16, 1 + len(planes), TILE * TILE), np.float32)
        used = 0
        quarter = np.empty((n_q, n_c), np.float32)
        half = np.empty((n_h, n_c), np.float32)
        across = np.empty((n_h, TILE), np.float32)
        scores = np.empty(TILE * TILE, np.float32)
        for job in range(starts[i], starts[i + 1]):
            best[job], pool, used = _search(
                heatmaps, planes, channel, mirrored, stages, heat_max, tag_lo, tag_hi, block_max, block_lo,
                block_hi, seeds, seed_tags, k, mean_tags[job_person[job]], slot, pool, used, quarter, half, across,
                scores,
            )


# --------------------------------------------------------------------------------------------- API


@dataclass(frozen=True)
class RefineMaps:
    """One frame's maps as refine reads them. Shapes: K joints, L tag dimensions, H x W the network input,
    TY x TX = ceil(H/TILE) x ceil(W/TILE) tiles, M seeds per joint.

    Attributes:
        heatmaps: float32 (K, H, W) aggregated heatmaps.
        tags: the tag maps (K, H, W, L) as a TagSource.
        heat_max: float32 (K, TY, TX) the largest heat of each tile.
        tag_lo, tag_hi: float32 (K, L, TY, TX) `tag_source.tile_tag_ranges`.
        seeds: int64 (K, M) flat pixel indices scored first (the candidates; any pixels will do), and
        seed_tags: float32 (K, M, L) the tags there.
    """

    heatmaps: np.ndarray
    tags: TagSource
    heat_max: np.ndarray
    tag_lo: np.ndarray
    tag_hi: np.ndarray
    seeds: np.ndarray
    seed_tags: np.ndarray

    @property
    def tag_dim(self) -> int:
        return self.tags.tag_dim


def tile_shape(h: int, w: int) -> tuple[int, int]:
    return -(-h // TILE), -(-w // TILE)


def refine_maps_from_full(maps: AggregatedMaps, seeds: np.ndarray | None = None) -> RefineMaps:
    """RefineMaps over full-resolution AggregatedMaps (their tags with identity tables); seeds: int64
    (K, M) flat indices scored first."""
    heatmaps = np.ascontiguousarray(maps.heatmaps, dtype=_F32)
    tags = np.asarray(maps.tags, dtype=_F32)
    k, h, w = heatmaps.shape
    heat_max = np.empty((k,) + tile_shape(h, w), _F32)
    for joint in range(k):
        tile_heat_max(heatmaps[joint], TILE, heat_max[joint])
    source = TagSource.from_maps(tags)
    tag_lo, tag_hi = tile_tag_ranges(source, TILE)
    seeds = np.zeros((k, 0), np.int64) if seeds is None else np.ascontiguousarray(seeds, dtype=np.int64)
    seed_tags = np.ascontiguousarray(tags[np.arange(k)[:, None], seeds // w, seeds % w])
    return RefineMaps(heatmaps, source, heat_max, tag_lo, tag_hi, seeds, seed_tags)


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
        tags = maps.tags
        _search_jobs(maps.heatmaps, tags.planes, tags.channel, tags.mirrored, *tags.stages, maps.heat_max,
                     maps.tag_lo, maps.tag_hi, block_max, block_lo, block_hi, maps.seeds, maps.seed_tags, mean_tags,
                     joints, starts, person, tags.scratch_shape(TILE), best)
    flat = np.zeros((n, k), np.int64)
    flat[person, joint] = best
    return refine_result(maps.heatmaps, flat, pending)
