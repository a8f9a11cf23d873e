"""NMS and top-k of aggregated heatmaps on the CPU (Numba): the twin of `aggregate_ref.top_candidates`.

`scan_band` is what the Numba aggregation calls per band of rows while it projects a joint's heatmap;
`top_k_numba` runs it over whole maps. Ties are broken by the lower flat index, as in the reference.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba import uint64 as _u

from pose_stream.decoding.aggregate_ref import check_nms
from pose_stream.decoding.refine_numba import TILE, tile_heat_max

_F32 = np.float32
_ZERO = np.float32(0.0)


@njit(cache=True, nogil=True)
def _is_window_max(heat, y, x, pad):
    """heat[y, x] is the max of its window (pixels outside the map ignored). The four nearest pixels first:
    on a peak's slope one of them is higher, which settles most pixels in a few loads."""
    v = heat[y, x]
    h, w = heat.shape
    if pad > 0:
        if (x + 1 < w and heat[y, x + 1] > v) or (x > 0 and heat[y, x - 1] > v):
            return False
        if (y + 1 < h and heat[y + 1, x] > v) or (y > 0 and heat[y - 1, x] > v):
            return False
    for yy in range(max(y - pad, 0), min(y + pad + 1, h)):
        for xx in range(max(x - pad, 0), min(x + pad + 1, w)):
            if heat[yy, xx] > v:
                return False
    return True


@njit(cache=True, nogil=True, inline="always")
def _may_enter(heat, y, start, stop, threshold):
    """Whether a pixel of row y, columns start..stop-1, could enter a full top-k list whose k-th value is
    threshold >= 0: only a pixel above it that its window keeps, so above it and not below any of its four
    nearest pixels (pixels outside the map ignored). Elementwise over the segment (vectorised)."""
    h, w = heat.shape
    row, up, down = heat[y], heat[max(y - 1, 0)], heat[min(y + 1, h - 1)]
    count = 0
    for x in range(max(start, 1), min(stop, w - 1)):
        v = row[_u(x)]
        count += (v > threshold) & (v >= row[_u(x - 1)]) & (v >= row[_u(x + 1)]) & (v >= up[_u(x)]) & (v >= down[_u(x)])
    if start == 0:
        count += row[0] > threshold
    if stop == w:
        count += row[w - 1] > threshold
    return count > 0


@njit(cache=True, nogil=True)
def scan_band(heat, y0, y1, pad, tile, tile_max, index, value, filled):
    """Rows y0..y1-1 of the top-len(index) NMS values of an (H, W) map, ties by lower flat index: one band
    of tile x tile tiles, whose maxima are tile_max (TX,). Bands must be scanned in order, with rows up to
    y1-1+pad final; returns how many of index/value are filled.

    Pixels come in flat-index order, so a newcomer never beats an equal incumbent. Once the list is full
    with a k-th value >= 0, a pixel not above it cannot enter whether its window keeps it (value <= k-th) or
    not (0 <= k-th): tiles whose maximum is not above it, then row segments without a pixel that could be
    kept above it, then single pixels are skipped before any window is looked at.
    """
    w = heat.shape[1]
    m = index.shape[0]
    # the tiles that can hold an entry: the k-th value only grows, so a tile ruled out now stays out
    hot = np.empty(tile_max.shape[0], np.int64)
    n_hot = 0
    for tx in range(tile_max.shape[0]):
        if not (filled == m and value[m - 1] >= _ZERO and tile_max[tx] <= value[m - 1]):
            hot[n_hot] = tx
            n_hot += 1
    for y in range(y0, y1):
        row = heat[y]
        for i in range(n_hot):
            tx = hot[i]
            start, stop = tx * tile, min(tx * tile + tile, w)
            threshold = value[m - 1] if filled == m else _ZERO
            if filled == m and threshold >= _ZERO and (
                tile_max[tx] <= threshold or not _may_enter(heat, y, start, stop, threshold)
            ):
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


@njit(cache=True, parallel=True)
def _top_k_maps(heatmaps, pad, tile, index, value):
    k_joints, h, w = heatmaps.shape
    for k in prange(k_joints):
        tiles = np.empty((-(-h // tile), -(-w // tile)), np.float32)
        tile_heat_max(heatmaps[k], tile, tiles)
        filled = 0
        for ty in range(tiles.shape[0]):
            filled = scan_band(heatmaps[k], ty * tile, min(ty * tile + tile, h), pad, tile, tiles[ty], index[k],
                                value[k], filled)


def top_k_numba(heatmaps: np.ndarray, max_people: int = 30, nms_kernel: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """NMS + top-k of given (K, H, W) maps, the Numba twin of `aggregate_ref.top_candidates` (which the
    aggregation fuses into its projection): flat indices int64 (K, M) and values float32 (K, M)."""
    heatmaps = np.ascontiguousarray(heatmaps, dtype=_F32)
    k, h, w = heatmaps.shape
    check_nms(h, w, max_people, nms_kernel)
    index = np.empty((k, max_people), np.int64)
    value = np.empty((k, max_people), _F32)
    _top_k_maps(heatmaps, nms_kernel // 2, TILE, index, value)
    return index, value
