"""How well people keep their identity and how steady their joints are, on clips with ground truth.

Identity: per frame the tracked people (track_id >= 0) are matched to the labelled people by OKS (a pair
counts when OKS >= 0.5; distance = 1 - OKS) and fed to `motmetrics`, which computes IDF1, MOTA and identity
switches the standard (CLEAR MOT / IDF1) way.

Labelled people with fewer than MIN_VISIBLE_JOINTS visible joints (someone leaving the frame, or hidden behind
another person) are "don't care", as COCO ignores people without keypoints: they are not expected to be found,
and a tracked person who matches one of them (and nobody else) is not counted as a false positive. With 1-4
joints a person's size is unknown, so that match uses the tracked person's size as OKS area.

Steadiness, per labelled person followed by one track in two consecutive frames, per labelled visible joint:
- jitter: RMS over such joints of |(p_t - p_t-1) - (g_t - g_t-1)|, the output's frame-to-frame motion minus the
  truth's, in pixels;
- lag: the shift s (frames) that minimises the RMS of p_t - g(t - s), with g linearly interpolated between
  frames: how far behind the truth the output runs.

Shapes: K joints; per frame P labelled people (P, K, 3) x, y, visibility with ids (P,), and N output people
(N, K, 3) with track ids (N,), -1 for people not (yet) tracked.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pose_stream.oks import joint_box_area, joint_similarities, oks_matrix

MIN_OKS = 0.5
MIN_VISIBLE_JOINTS = 5
LAG_SHIFTS = np.round(np.arange(-1.0, 4.0001, 0.05), 2)  # frames tried when measuring lag


@dataclass(frozen=True)
class ClipFrame:
    """One frame of a clip: labelled people with their ids, output people with their track ids."""

    truth: np.ndarray
    truth_ids: np.ndarray
    poses: np.ndarray
    track_ids: np.ndarray


def match_people(truth: np.ndarray, poses: np.ndarray, sigmas: np.ndarray, min_oks: float = MIN_OKS
                 ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """OKS (P, N) of every output person with every labelled one, and the one-to-one pairs (p, n) with the
    highest total OKS among pairs reaching `min_oks` (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    if not len(truth) or not len(poses):
        return np.zeros((len(truth), len(poses))), []
    similarity = oks_matrix(poses, truth, sigmas, used=truth[:, :, 2] > 0).T
    rows, cols = linear_sum_assignment(-np.where(similarity >= min_oks, similarity, 0.0))
    return similarity, [(int(p), int(n)) for p, n in zip(rows, cols) if similarity[p, n] >= min_oks]


def identity_metrics(frames: Iterable[ClipFrame], sigmas: np.ndarray, min_oks: float = MIN_OKS) -> dict:
    """IDF1, MOTA, identity switches (total and per 100 frames), false positives and misses (motmetrics)."""
    import motmetrics as mm

    accumulator = mm.MOTAccumulator(auto_id=True)
    count = 0
    for frame in frames:
        count += 1
        frame = counted_people(frame, sigmas, min_oks)
        similarity, _ = match_people(frame.truth, frame.poses, sigmas, min_oks)
        distances = np.where(similarity >= min_oks, 1.0 - similarity, np.nan)
        accumulator.update(frame.truth_ids.tolist(), frame.track_ids.tolist(), distances)
    names = ["idf1", "mota", "num_switches", "num_false_positives", "num_misses", "num_objects", "num_unique_objects"]
    summary = mm.metrics.create().compute(accumulator, metrics=names, name="clip")
    row = {name: summary[name].iloc[0] for name in names}
    return {
        "frames": count, "idf1": _round(row["idf1"]), "mota": _round(row["mota"]),
        "id_switches": int(row["num_switches"]),
        "id_switches_per_100_frames": _round(100 * row["num_switches"] / max(count, 1)),
        "false_positives": int(row["num_false_positives"]), "misses": int(row["num_misses"]),
        "labelled_people": int(row["num_objects"]), "identities": int(row["num_unique_objects"]),
    }


def counted_people(frame: ClipFrame, sigmas: np.ndarray, min_oks: float = MIN_OKS) -> ClipFrame:
    """The frame with only the labelled people that count and the tracked people that are not "don't care"
    matches (see the module docstring)."""
    visible = (frame.truth[:, :, 2] > 0).sum(axis=1) if len(frame.truth) else np.zeros(0, int)
    counted = visible >= MIN_VISIBLE_JOINTS
    tracked = np.flatnonzero(frame.track_ids >= 0)
    poses = frame.poses[tracked]
    keep = np.ones(len(tracked), bool)
    ignored = frame.truth[~counted]
    if len(ignored) and len(tracked):
        # (P_ignored, N, K): the ignored person's joints against each tracked person, in the tracked person's size
        per_joint = joint_similarities(ignored, poses, sigmas, joint_box_area(poses))
        used = ignored[:, :, 2] > 0
        to_ignored = ((per_joint * used[:, None]).sum(-1) / np.maximum(used.sum(-1), 1)[:, None]).max(axis=0)
        to_counted = (oks_matrix(poses, frame.truth[counted], sigmas, used=frame.truth[counted, :, 2] > 0).max(axis=1)
                      if counted.any() else np.zeros(len(tracked)))
        keep = ~((to_ignored >= min_oks) & (to_counted < min_oks))
    return ClipFrame(frame.truth[counted], frame.truth_ids[counted], poses[keep], frame.track_ids[tracked][keep])


def steadiness(frames: Sequence[ClipFrame], sigmas: np.ndarray, min_oks: float = MIN_OKS) -> dict:
    """Jitter (px) and lag (frames) of the tracked people's visible joints, see the module docstring."""
    followed = _followed_joints(frames, sigmas, min_oks)
    if not followed:
        return {"jitter_px": None, "lag_frames": None, "joint_samples": 0}
    motion_errors = []
    for output, truth in followed.values():
        ok = ~np.isnan(output[:, 0]) & ~np.isnan(truth[:, 0])
        both = ok[1:] & ok[:-1]
        error = (output[1:] - output[:-1]) - (truth[1:] - truth[:-1])
        motion_errors.append(error[both])
    motion = np.concatenate(motion_errors)
    return {"jitter_px": _round(float(np.sqrt((motion ** 2).sum(axis=1).mean()))) if len(motion) else None,
            "lag_frames": _round(_lag(followed.values())), "joint_samples": int(len(motion))}


def _followed_joints(frames: Sequence[ClipFrame], sigmas: np.ndarray, min_oks: float
                     ) -> dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]]:
    """(truth id, track id, joint) -> (output xy (T, 2), truth xy (T, 2)) over the clip, NaN where that labelled
    joint is not visible or that pair is not matched."""
    followed: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
    total = len(frames)
    for t, frame in enumerate(frames):
        frame = counted_people(frame, sigmas, min_oks)
        _, pairs = match_people(frame.truth, frame.poses, sigmas, min_oks)
        for p, n in pairs:
            person, track = int(frame.truth_ids[p]), int(frame.track_ids[n])
            for joint in np.flatnonzero(frame.truth[p, :, 2] > 1):
                key = (person, track, int(joint))
                if key not in followed:
                    followed[key] = (np.full((total, 2), np.nan), np.full((total, 2), np.nan))
                output, truth = followed[key]
                output[t] = frame.poses[n, joint, :2]
                truth[t] = frame.truth[p, joint, :2]
    return followed


def _lag(tracks: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """The shift (frames, from LAG_SHIFTS) that best lines the outputs up with the delayed truth."""
    errors = np.zeros(len(LAG_SHIFTS))
    counts = np.zeros(len(LAG_SHIFTS))
    for output, truth in tracks:
        times = np.arange(len(truth), dtype=np.float64)
        known = ~np.isnan(truth[:, 0])
        if known.sum() < 2:
            continue
        for i, shift in enumerate(LAG_SHIFTS):
            at = times - shift
            # only where the delayed truth lies between two known labelled frames
            inside = (at >= times[known][0]) & (at <= times[known][-1]) & ~np.isnan(output[:, 0])
            delayed = np.stack([np.interp(at[inside], times[known], truth[known, c]) for c in range(2)], axis=1)
            errors[i] += ((output[inside] - delayed) ** 2).sum()
            counts[i] += inside.sum()
    if not counts.any():
        return float("nan")
    return float(LAG_SHIFTS[int(np.argmin(errors / np.maximum(counts, 1)))])


def _round(value: float) -> float | None:
    value = float(value)
    return None if value != value else round(value, 4)
