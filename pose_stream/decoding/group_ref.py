"""Associative-embedding grouping, the plain NumPy reference (written for clarity, not speed).

The fast path (group_numba) is tested against this module. It follows the reference doc (Grouping and
Details) step by step, with the reference's number types: candidate tags and person mean tags are float32
(means taken with np.mean, as the reference does), matching distances float64, refine scores float32.
One deliberate difference: every new person is a person of its own; the reference keys people by the
float value of their first tag, so two new people with an equal tag value collapse into one.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pose_stream.decoding.aggregate_ref import refine_peaks
from pose_stream.decoding.grouping_types import (
    OUT_OF_REACH_COST, PADDING_COST, Grouped, GroupingParams, Matching, RefineRequest,
)
from pose_stream.decoding.hungarian import munkres
from pose_stream.decoding.types import AggregatedMaps, Candidates, RefinePeaks


class _Person:
    def __init__(self, num_joints: int) -> None:
        self.joints = np.full(num_joints, -1, np.int32)
        self.tags: list[np.ndarray] = []  # in the order the joints joined
        self.places: list[np.ndarray] = []  # (x, y) float64 of the joints, same order

    def add(self, joint: int, candidate: int, tag: np.ndarray, place: np.ndarray) -> None:
        self.joints[joint] = candidate
        self.tags.append(tag)
        self.places.append(place)

    def nearest_squared(self, places: np.ndarray) -> np.ndarray:
        """Squared distance (float64) from each of places (R, 2) to this person's nearest joint."""
        own = np.asarray(self.places, np.float64)
        return (((places[:, None, :] - own[None, :, :]) ** 2).sum(axis=2)).min(axis=1)

    def mean_tag(self) -> np.ndarray:
        return np.mean(np.stack(self.tags), axis=0)


def match(cands: Candidates, visit_order: Sequence[int], params: GroupingParams = GroupingParams(),
          size: tuple[int, int] | None = None) -> Matching:
    """Assign candidates to people, visiting joints in visit_order (the reference's match_by_tag).

    size: the network input's (W, H) (or (H, W)), needed with params.max_reach only.
    """
    num_joints = cands.num_joints
    reach_squared = params.reach_squared(size)
    people: list[_Person] = []
    for joint in visit_order:
        # float64 comparison: the reference compares its float64 joint rows (float32(0.1) > 0.1 holds there)
        kept = np.flatnonzero(cands.value[joint].astype(np.float64) > params.detection_threshold)
        if kept.size == 0:
            continue
        tags = cands.tags[joint, kept]
        places = np.stack([cands.x[joint, kept], cands.y[joint, kept]], axis=1).astype(np.float64)
        if not people:
            for candidate, tag, place in zip(kept, tags, places):
                person = _Person(num_joints)
                person.add(joint, candidate, tag, place)
                people.append(person)
            continue
        grouped = people[: params.max_people]
        means = np.stack([p.mean_tag() for p in grouped])
        distance = np.linalg.norm(tags[:, None, :].astype(np.float64) - means[None, :, :], axis=2)
        values = cands.value[joint, kept].astype(np.float64)
        cost = np.round(distance) * 100 - values[:, None] if params.use_detection_value else distance.copy()
        if reach_squared >= 0:
            out_of_reach = np.stack([p.nearest_squared(places) for p in grouped], axis=1) > reach_squared
            cost = cost + np.where(out_of_reach, OUT_OF_REACH_COST, 0.0)
        else:
            out_of_reach = np.zeros(distance.shape, bool)
        if len(kept) > len(grouped):
            cost = np.concatenate([cost, np.full((len(kept), len(kept) - len(grouped)), PADDING_COST)], axis=1)
        col_of_row = munkres(cost)
        for row, (candidate, tag, place) in enumerate(zip(kept, tags, places)):
            col = col_of_row[row]
            if 0 <= col < len(grouped) and distance[row, col] < params.tag_threshold and not out_of_reach[row, col]:
                grouped[col].add(joint, candidate, tag, place)
            else:
                person = _Person(num_joints)
                person.add(joint, candidate, tag, place)
                people.append(person)
    joints = np.stack([p.joints for p in people]) if people else np.zeros((0, num_joints), np.int32)
    return Matching(joints.astype(np.int32))


def quarter_offset(ix: int, iy: int, heatmap: np.ndarray) -> tuple[float, float]:
    """Pixel (ix, iy) -> ix + 0.5 +- 0.25, iy + 0.5 +- 0.25, towards the higher neighbour (indices clamped)."""
    h, w = heatmap.shape
    x = ix + 0.5 + (0.25 if heatmap[iy, min(ix + 1, w - 1)] > heatmap[iy, max(ix - 1, 0)] else -0.25)
    y = iy + 0.5 + (0.25 if heatmap[min(iy + 1, h - 1), ix] > heatmap[max(iy - 1, 0), ix] else -0.25)
    return x, y


def place_joints(cands: Candidates, matching: Matching, heatmaps: np.ndarray, adjust: bool = True):
    """Keypoints float32 (N, K, 3) of the matched joints (adjusted when asked) and scores float32 (N,)."""
    n, k = matching.joints.shape
    keypoints = np.zeros((n, k, 3), np.float32)
    for person in range(n):
        for joint in range(k):
            m = matching.joints[person, joint]
            if m < 0:
                continue
            ix, iy = int(cands.x[joint, m]), int(cands.y[joint, m])
            x, y = quarter_offset(ix, iy, heatmaps[joint]) if adjust else (ix, iy)
            keypoints[person, joint] = (x, y, cands.value[joint, m])
    scores = np.array([keypoints[p, :, 2].mean() for p in range(n)], np.float32)
    return keypoints, scores


def refine_request(cands: Candidates, matching: Matching, maps: AggregatedMaps) -> RefineRequest:
    """Each person's mean tag, read from the tag maps at its assigned joints (joint-index order)."""
    n, k = matching.joints.shape
    means = np.zeros((n, maps.tags.shape[3]), np.float32)
    for person in range(n):
        tags = [
            maps.tags[joint, cands.y[joint, m], cands.x[joint, m]]
            for joint, m in enumerate(matching.joints[person]) if m >= 0
        ]
        means[person] = np.mean(tags, axis=0)
    return RefineRequest(means, matching.joints < 0)


def refine_apply(keypoints: np.ndarray, request: RefineRequest, result: RefinePeaks) -> np.ndarray:
    """Fill pending joints whose found value is > 0 (quarter offset from the neighbours, + 0.5)."""
    out = keypoints.copy()
    for person, joint in zip(*np.nonzero(request.pending & (result.value > 0))):
        right, left, down, up = result.neighbours[person, joint]
        x = result.x[person, joint] + 0.5 + (0.25 if right > left else -0.25)
        y = result.y[person, joint] + 0.5 + (0.25 if down > up else -0.25)
        out[person, joint] = (x, y, result.value[person, joint])
    return out


def group(
    cands: Candidates, maps: AggregatedMaps, visit_order: Sequence[int], params: GroupingParams = GroupingParams()
) -> Grouped:
    """Candidates and aggregated maps -> people in network-input pixels."""
    matching = match(cands, visit_order, params, size=maps.heatmaps.shape[1:])
    keypoints, scores = place_joints(cands, matching, maps.heatmaps, params.adjust)
    if params.refine and matching.num_people:
        request = refine_request(cands, matching, maps)
        keypoints = refine_apply(keypoints, request, refine_peaks(maps, request.mean_tags, request.pending))
    return Grouped(keypoints, scores, matching.joints)
