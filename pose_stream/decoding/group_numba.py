"""Associative-embedding grouping in Numba: the fast CPU path, equal to group_ref on every input.

Stages (all @njit, buffers pre-allocated per stream in `NumbaGrouper`):
- match: joints in visit order, Hungarian assignment against the first max_people people (hungarian.py);
- place: quarter-pixel adjust from the four neighbour values of each candidate, person scores;
- refine request: each person's mean tag (from candidate tags, which are the tag maps at those pixels);
- refine search: `refine_numba.refine_search` for the unassigned joints only (the aggregation's own data on
  the CPU path; full maps here when `group` is given them);
- refine apply: fill the missing joints found with a value > 0.

The search can be replaced by any `RefineSearch` (the CUDA refine kernel gives the same RefinePeaks).
Float arithmetic follows NumPy's in the reference (float32 pairwise sums for 1-D means, float32 refine
scores, float64 matching distances), so results are identical, not merely close.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numba
import numpy as np

from pose_stream.decoding.grouping_types import (
    OUT_OF_REACH_COST, PADDING_COST, Grouped, GroupingParams, Matching, RefineRequest,
)
from pose_stream.decoding.hungarian import MunkresWorkspace, munkres_into
from pose_stream.decoding.refine_numba import refine_maps_from_full, refine_search
from pose_stream.decoding.types import AggregatedMaps, Candidates, RefinePeaks

RefineSearch = Callable[[RefineRequest], RefinePeaks]

_PADDING_COST = PADDING_COST  # module-level floats are compile-time constants for Numba
_OUT_OF_REACH_COST = OUT_OF_REACH_COST
# ---------------------------------------------------------------------------------------------- sums
@numba.njit(cache=True, nogil=True, inline="always")
def _pairwise_sum_f32(values, n):
    """NumPy's float32 add.reduce of values[:n] (pairwise, 8 accumulators; exact for n <= 128)."""
    if n < 8:
        total = np.float32(-0.0)
        for i in range(n):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[0], values[1], values[2], values[3]
    r4, r5, r6, r7 = values[4], values[5], values[6], values[7]
    end = n - n % 8
    for i in range(8, end, 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end, n):
        total += values[i]
    return total


@numba.njit(cache=True, nogil=True)
def _mean_rows_f32(rows, n, out):
    """out[:] = np.mean(rows[:n], axis=0) for float32 rows (n, L), with NumPy's summation order."""
    tag_dim = rows.shape[1]
    if tag_dim == 1:  # NumPy reduces a (n, 1) stack as one 1-D pairwise sum
        out[0] = _pairwise_sum_f32(rows[:, 0], n) / np.float32(n)
        return
    for l in range(tag_dim):  # otherwise row by row
        total = np.float32(0.0)
        for i in range(n):
            total += rows[i, l]
        out[l] = total / np.float32(n)


# ------------------------------------------------------------------------------------------- match
@numba.njit(cache=True, nogil=True)
def _new_person(person, joint, candidate, tag, joints, person_tags, tag_count, means):
    joints[person, :] = -1
    joints[person, joint] = candidate
    person_tags[person, 0, :] = tag
    tag_count[person] = 1
    means[person, :] = tag


@numba.njit(cache=True, nogil=True)
def _out_of_reach(joints, person, cand_x, cand_y, x, y, reach_squared):
    """Whether (x, y) is farther than the reach from every joint person holds (whole-pixel squares: exact)."""
    for joint in range(joints.shape[1]):
        m = joints[person, joint]
        if m >= 0:
            dx = np.float64(cand_x[joint, m]) - np.float64(x)
            dy = np.float64(cand_y[joint, m]) - np.float64(y)
            if dx * dx + dy * dy <= reach_squared:
                return False
    return True


@numba.njit(cache=True, nogil=True)
def _match(
    cand_value, cand_tags, cand_x, cand_y, visit_order, detection_threshold, tag_threshold, max_people,
    use_detection_value, reach_squared, joints, person_tags, tag_count, means, kept, distance, cost, far,
    col_of_row, work, star_in_row, star_in_col, prime_in_row, row_covered, col_covered, path,
):
    """Fill joints (N_max, K) with candidate indices; return the number of people. reach_squared < 0: no
    max_reach (the reference)."""
    num_candidates = cand_value.shape[1]
    tag_dim = cand_tags.shape[2]
    num_people = 0
    for step in range(visit_order.shape[0]):
        joint = visit_order[step]
        num_kept = 0
        for m in range(num_candidates):
            if cand_value[joint, m] > detection_threshold:
                kept[num_kept] = m
                num_kept += 1
        if num_kept == 0:
            continue
        if num_people == 0:
            for r in range(num_kept):
                m = kept[r]
                _new_person(num_people, joint, m, cand_tags[joint, m], joints, person_tags, tag_count, means)
                num_people += 1
            continue
        num_grouped = min(num_people, max_people)
        num_cols = max(num_kept, num_grouped)
        for r in range(num_kept):
            m = kept[r]
            value = np.float64(cand_value[joint, m])
            for c in range(num_grouped):
                squared = 0.0
                for l in range(tag_dim):
                    diff = np.float64(cand_tags[joint, m, l]) - np.float64(means[c, l])
                    squared += diff * diff
                d = math.sqrt(squared)
                distance[r, c] = d
                cost[r, c] = np.rint(d) * 100.0 - value if use_detection_value else d
                far[r, c] = reach_squared >= 0 and _out_of_reach(
                    joints, c, cand_x, cand_y, cand_x[joint, m], cand_y[joint, m], reach_squared)
                if far[r, c]:
                    cost[r, c] += _OUT_OF_REACH_COST
            for c in range(num_grouped, num_cols):
                cost[r, c] = _PADDING_COST
        munkres_into(cost[:num_kept, :num_cols], work, star_in_row, star_in_col, prime_in_row,
                     row_covered, col_covered, path, col_of_row)
        for r in range(num_kept):
            m = kept[r]
            c = col_of_row[r]
            if 0 <= c < num_grouped and distance[r, c] < tag_threshold and not far[r, c]:
                joints[c, joint] = m
                person_tags[c, tag_count[c], :] = cand_tags[joint, m]
                tag_count[c] += 1
                _mean_rows_f32(person_tags[c], tag_count[c], means[c])
            else:
                _new_person(num_people, joint, m, cand_tags[joint, m], joints, person_tags, tag_count, means)
                num_people += 1
    return num_people


# ------------------------------------------------------------------------------------- adjust, score
@numba.njit(cache=True, nogil=True, inline="always")
def _offset(index, after, before):
    # pixel index + 0.5, moved a quarter pixel towards the higher neighbour (after: index + 1)
    return np.float32(index) + np.float32(0.75) if after > before else np.float32(index) + np.float32(0.25)


@numba.njit(cache=True, nogil=True)
def _gather_neighbours(heatmap, x, y, out):
    height, width = heatmap.shape
    out[0] = heatmap[y, min(x + 1, width - 1)]
    out[1] = heatmap[y, max(x - 1, 0)]
    out[2] = heatmap[min(y + 1, height - 1), x]
    out[3] = heatmap[max(y - 1, 0), x]


@numba.njit(cache=True, nogil=True)
def candidate_neighbours_kernel(heatmaps, cand_x, cand_y, out):
    """out float32 (K, M, 4): heatmap values at x+1, x-1, y+1, y-1 (clamped) of every candidate pixel."""
    for joint in range(cand_x.shape[0]):
        for m in range(cand_x.shape[1]):
            _gather_neighbours(heatmaps[joint], cand_x[joint, m], cand_y[joint, m], out[joint, m])


@numba.njit(cache=True, nogil=True)
def _place(joints, cand_x, cand_y, cand_value, neighbours, adjust, keypoints, scores):
    num_people, num_joints = joints.shape
    values = np.empty(num_joints, np.float32)
    for person in range(num_people):
        for joint in range(num_joints):
            m = joints[person, joint]
            if m < 0:
                keypoints[person, joint, 0] = 0.0
                keypoints[person, joint, 1] = 0.0
                keypoints[person, joint, 2] = 0.0
                values[joint] = 0.0
                continue
            x = cand_x[joint, m]
            y = cand_y[joint, m]
            if adjust:
                nb = neighbours[joint, m]
                keypoints[person, joint, 0] = _offset(x, nb[0], nb[1])
                keypoints[person, joint, 1] = _offset(y, nb[2], nb[3])
            else:
                keypoints[person, joint, 0] = x
                keypoints[person, joint, 1] = y
            keypoints[person, joint, 2] = cand_value[joint, m]
            values[joint] = cand_value[joint, m]
        scores[person] = _pairwise_sum_f32(values, num_joints) / np.float32(num_joints)


# -------------------------------------------------------------------------------------------- refine
@numba.njit(cache=True, nogil=True)
def _refine_means(joints, cand_tags, rows, means):
    num_people, num_joints = joints.shape
    for person in range(num_people):
        n = 0
        for joint in range(num_joints):
            m = joints[person, joint]
            if m >= 0:
                rows[n, :] = cand_tags[joint, m]
                n += 1
        _mean_rows_f32(rows, n, means[person])


@numba.njit(cache=True, nogil=True)
def _refine_apply(keypoints, pending, rx, ry, rvalue, rneighbours):
    num_people, num_joints = pending.shape
    for person in range(num_people):
        for joint in range(num_joints):
            if pending[person, joint] and rvalue[person, joint] > 0:
                nb = rneighbours[person, joint]
                keypoints[person, joint, 0] = _offset(rx[person, joint], nb[0], nb[1])
                keypoints[person, joint, 1] = _offset(ry[person, joint], nb[2], nb[3])
                keypoints[person, joint, 2] = rvalue[person, joint]


# ------------------------------------------------------------------------------------------ wrapper
def candidate_neighbours(heatmaps: np.ndarray, cands: Candidates) -> np.ndarray:
    """float32 (K, M, 4): heatmap values at x+1, x-1, y+1, y-1 of every candidate (indices clamped)."""
    out = np.empty(cands.x.shape + (4,), np.float32)
    candidate_neighbours_kernel(np.ascontiguousarray(heatmaps, np.float32), cands.x, cands.y, out)
    return out


class NumbaGrouper:
    """Grouping for one stream: stage methods and buffers sized once per (K, M, L).

    Args:
        visit_order: the joint set's grouping order (JointSet.visit_order).
        params: grouping settings.
    """

    def __init__(self, visit_order: Sequence[int], params: GroupingParams = GroupingParams()) -> None:
        self.visit_order = np.asarray(visit_order, np.int64)
        self.params = params
        self._shape: tuple[int, int, int] | None = None

    def _buffers(self, cands: Candidates) -> None:
        k, m = cands.value.shape
        tag_dim = cands.tags.shape[2]
        if self._shape == (k, m, tag_dim):
            return
        if self.visit_order.shape[0] != k or sorted(self.visit_order.tolist()) != list(range(k)):
            raise ValueError(f"visit_order must be a permutation of the {k} joints")
        if k > 128:
            raise ValueError("at most 128 joints are supported")  # exactness of the float32 pairwise sums
        size = max(m, self.params.max_people)
        self._max_people = k * m  # every kept candidate could start a person
        self._joints = np.empty((self._max_people, k), np.int32)
        self._person_tags = np.empty((self._max_people, k, tag_dim), np.float32)
        self._tag_count = np.empty(self._max_people, np.int64)
        self._means = np.empty((self._max_people, tag_dim), np.float32)
        self._kept = np.empty(m, np.int64)
        self._distance = np.empty((m, size), np.float64)
        self._cost = np.empty((m, size), np.float64)
        self._far = np.empty((m, size), np.bool_)
        self._col_of_row = np.empty(m, np.int64)
        self._munkres = MunkresWorkspace(size)
        self._rows = np.empty((k, tag_dim), np.float32)
        self._shape = (k, m, tag_dim)

    def match(self, cands: Candidates, size: tuple[int, int] | None = None) -> Matching:
        """size: the network input's (W, H), needed with params.max_reach only."""
        self._buffers(cands)
        p, ws = self.params, self._munkres
        n = _match(
            cands.value, cands.tags, cands.x, cands.y, self.visit_order, p.detection_threshold, p.tag_threshold,
            p.max_people, p.use_detection_value, p.reach_squared(size), self._joints, self._person_tags,
            self._tag_count, self._means, self._kept, self._distance, self._cost, self._far, self._col_of_row,
            ws.work, ws.star_in_row, ws.star_in_col, ws.prime_in_row, ws.row_covered, ws.col_covered, ws.path,
        )
        return Matching(self._joints[:n].copy())

    def place(self, cands: Candidates, matching: Matching, neighbours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints float32 (N, K, 3) and scores float32 (N,); neighbours float32 (K, M, 4)."""
        n, k = matching.joints.shape
        keypoints = np.empty((n, k, 3), np.float32)
        scores = np.empty(n, np.float32)
        _place(matching.joints, cands.x, cands.y, cands.value, neighbours, self.params.adjust, keypoints, scores)
        return keypoints, scores

    def refine_request(self, cands: Candidates, matching: Matching) -> RefineRequest:
        self._buffers(cands)
        means = np.empty((matching.num_people, cands.tags.shape[2]), np.float32)
        _refine_means(matching.joints, cands.tags, self._rows, means)
        return RefineRequest(means, matching.joints < 0)

    @staticmethod
    def refine_search(maps: AggregatedMaps, cands: Candidates, request: RefineRequest) -> RefinePeaks:
        """The CPU refine search over full AggregatedMaps (the candidates give first scores)."""
        seeds = cands.y.astype(np.int64) * maps.heatmaps.shape[2] + cands.x
        return refine_search(refine_maps_from_full(maps, seeds), request.mean_tags, request.pending)

    @staticmethod
    def refine_apply(keypoints: np.ndarray, request: RefineRequest, result: RefinePeaks) -> np.ndarray:
        """Fill pending joints in place (value > 0); returns keypoints."""
        _refine_apply(keypoints, request.pending, result.x, result.y, result.value, result.neighbours)
        return keypoints

    def group(
        self,
        cands: Candidates,
        maps: AggregatedMaps | None = None,
        *,
        neighbours: np.ndarray | None = None,
        refine_search: RefineSearch | None = None,
        size: tuple[int, int] | None = None,
    ) -> Grouped:
        """Candidates -> people in network-input pixels.

        Args:
            cands: top-M candidates per joint.
            maps: the aggregated maps (host). Needed unless both neighbours and refine_search are given
                (the GPU path, where the maps stay on the device).
            neighbours: float32 (K, M, 4) candidate neighbour values; computed from maps when None.
            refine_search: replaces the CPU search (e.g. the CUDA refine kernel).
            size: the network input's (W, H), for params.max_reach (taken from maps when not given).
        """
        cands = _contiguous(cands)
        if neighbours is None:
            if maps is None:
                raise ValueError("group() needs the maps or the candidate neighbours")
            neighbours = candidate_neighbours(maps.heatmaps, cands)
        if size is None and maps is not None:
            size = maps.heatmaps.shape[1:]
        matching = self.match(cands, size)
        keypoints, scores = self.place(cands, matching, neighbours)
        if self.params.refine and matching.num_people:
            request = self.refine_request(cands, matching)
            if refine_search is None:
                if maps is None:
                    raise ValueError("refine needs the maps or a refine_search")
                result = self.refine_search(maps, cands, request)
            else:
                result = refine_search(request)
            self.refine_apply(keypoints, request, result)
        return Grouped(keypoints, scores, matching.joints)


def _contiguous(cands: Candidates) -> Candidates:
    return Candidates(
        np.ascontiguousarray(cands.x, np.int32), np.ascontiguousarray(cands.y, np.int32),
        np.ascontiguousarray(cands.value, np.float32), np.ascontiguousarray(cands.tags, np.float32),
    )


def group(
    cands: Candidates, maps: AggregatedMaps, visit_order: Sequence[int], params: GroupingParams = GroupingParams()
) -> Grouped:
    """One-shot grouping (same signature as group_ref.group); use NumbaGrouper for streams."""
    return NumbaGrouper(visit_order, params).group(cands, maps)
