"""Where the AP goes: re-score with one kind of error removed, and the mean offset of every joint.

Each row of `ap_breakdown` copies the results, replaces some joints of the people that match a ground-truth
person (OKS >= 0.1, in score order as COCOeval matches) with that person's labelled positions, and runs the
same COCO evaluation. The rise over the first row is what that kind of error costs. Shapes: K joints; P results of one image; G ground-truth people.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pose_stream.evaluation.annotations import KeypointAnnotations
from pose_stream.evaluation.coco import Predictions, as_annotations, as_results, evaluate
from pose_stream.joints import JointSet
from pose_stream.oks import oks

# Joint groups by name, so that COCO (nose, eyes, ears) and CrowdPose (head, neck) share them.
JOINT_GROUPS: dict[str, tuple[str, ...]] = {
    "head": ("nose", "eye", "ear", "head", "neck"),
    "shoulders and hips": ("shoulder", "hip"),
    "elbows and wrists": ("elbow", "wrist"),
    "knees and ankles": ("knee", "ankle"),
}
# COCO's area ranges (pixels^2 of the person's segmentation).
SIZE_RANGES: dict[str, tuple[float, float]] = {
    "small (< 32^2)": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large (> 96^2)": (96.0**2, float("inf")),
}
HIDDEN = 1.0  # COCO visibility of a labelled joint that cannot be seen


@dataclass(frozen=True)
class BreakdownRow:
    """COCO stats after one change to the results (the first row changes nothing)."""

    change: str
    stats: dict[str, float]


def group_joints(joint_set: JointSet, group: str) -> list[int]:
    """Indices of the joints whose names contain one of the group's words."""
    words = JOINT_GROUPS[group]
    return [j for j, name in enumerate(joint_set.names) if any(w in name for w in words)]


def match_to_ground_truth(results: Sequence[Mapping[str, Any]], annotations: KeypointAnnotations,
                          min_oks: float = 0.1) -> dict[int, dict[str, Any]]:
    """Result index -> the ground-truth annotation it matches.

    As COCOeval does: per image, results in falling score order each take the unmatched, non-crowd person
    with the highest OKS, if that OKS reaches `min_oks`.
    """
    sigmas = np.asarray(annotations.joint_set.sigmas, dtype=np.float64)
    truth: dict[Any, list[dict[str, Any]]] = {}
    for ann in annotations.dataset["annotations"]:
        if not ann.get("iscrowd", 0) and ann.get("num_keypoints", 0) > 0:
            truth.setdefault(ann["image_id"], []).append(ann)
    order = sorted(range(len(results)), key=lambda i: -float(results[i]["score"]))
    taken: set[int] = set()
    matches: dict[int, dict[str, Any]] = {}
    for index in order:
        result = results[index]
        predicted = np.asarray(result["keypoints"], dtype=np.float64).reshape(-1, 3)
        best, best_ann = min_oks, None
        for ann in truth.get(result["image_id"], []):
            if ann["id"] in taken:
                continue
            labelled = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
            similarity = oks(predicted, labelled, sigmas, used=labelled[:, 2] > 0, area=float(ann["area"]))
            if similarity >= best:
                best, best_ann = similarity, ann
        if best_ann is not None:
            taken.add(best_ann["id"])
            matches[index] = best_ann
    return matches


def _corrected(results: Sequence[Mapping[str, Any]], matches: Mapping[int, dict[str, Any]], joints: Sequence[int],
               visibility: float | None = None, area: tuple[float, float] | None = None,
               drop_unmatched: bool = False) -> list[dict[str, Any]]:
    out = []
    for index, result in enumerate(results):
        ann = matches.get(index)
        if ann is None:
            if not drop_unmatched:
                out.append(dict(result))
            continue
        result = copy.deepcopy(dict(result))
        if area is None or area[0] <= float(ann["area"]) < area[1]:
            predicted = np.asarray(result["keypoints"], dtype=np.float64).reshape(-1, 3)
            truth = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
            for j in joints:
                if truth[j, 2] > 0 and (visibility is None or truth[j, 2] == visibility):
                    predicted[j, :2] = truth[j, :2]
            result["keypoints"] = [float(v) for v in predicted.reshape(-1)]
        out.append(result)
    return out


def ap_breakdown(predictions: Predictions, annotations: str | dict | KeypointAnnotations,
                 image_ids: Sequence[int] | None = None) -> list[BreakdownRow]:
    """COCO stats of the predictions as they are, then with each kind of error removed (see the module doc)."""
    gt = as_annotations(annotations)
    results = as_results(predictions)
    matches = match_to_ground_truth(results, gt)
    every = list(range(gt.joint_set.num_joints))
    # Results that reach no one at OKS 0.5, the lowest threshold COCO counts a match at.
    strict = match_to_ground_truth(results, gt, min_oks=0.5)
    changes: list[tuple[str, list[dict[str, Any]]]] = [
        ("as predicted", results),
        ("without results below OKS 0.5 to anyone", _corrected(results, strict, [], drop_unmatched=True)),
    ]
    for group in JOINT_GROUPS:
        joints = group_joints(gt.joint_set, group)
        if joints:
            changes.append((f"{group} exact", _corrected(results, matches, joints)))
    changes.append(("hidden (v=1) joints exact", _corrected(results, matches, every, visibility=HIDDEN)))
    for name, bounds in SIZE_RANGES.items():
        changes.append((f"{name} people exact", _corrected(results, matches, every, area=bounds)))
    changes.append(("every matched person exact", _corrected(results, matches, every)))
    return [BreakdownRow(change, evaluate(rows, gt, image_ids=image_ids).stats) for change, rows in changes]


def joint_offsets(predictions: Predictions, annotations: str | dict | KeypointAnnotations,
                  near: float = 0.1, min_oks: float = 0.5) -> np.ndarray:
    """(K, 4) per joint: mean x and y offset (predicted - labelled, image pixels), RMS distance, count.

    Only visible joints (v=2) of people matched with OKS >= min_oks, and only those within near * sqrt(area)
    of the label, so that gross misses do not hide a steady shift. NaN where a joint has none.
    """
    gt = as_annotations(annotations)
    results = as_results(predictions)
    num_joints = gt.joint_set.num_joints
    offsets: list[list[np.ndarray]] = [[] for _ in range(num_joints)]
    for index, ann in match_to_ground_truth(results, gt, min_oks=min_oks).items():
        predicted = np.asarray(results[index]["keypoints"], dtype=np.float64).reshape(-1, 3)
        truth = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        delta = predicted[:, :2] - truth[:, :2]
        close = np.hypot(delta[:, 0], delta[:, 1]) < near * np.sqrt(float(ann["area"]))
        for j in np.flatnonzero((truth[:, 2] == 2) & close):
            offsets[j].append(delta[j])
    table = np.full((num_joints, 4), np.nan)
    for j, rows in enumerate(offsets):
        table[j, 3] = len(rows)
        if rows:
            d = np.array(rows)
            table[j, :2] = d.mean(0)
            table[j, 2] = np.sqrt((d**2).sum(1).mean())
    return table


def breakdown_table(rows: Sequence[BreakdownRow], offsets: np.ndarray, joint_set: JointSet) -> str:
    """Markdown: the AP rows (with the rise over the first) and the per-joint offsets."""
    base = rows[0].stats["AP"]
    lines = ["| change | AP | rise | APm | APl |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        s = row.stats
        lines.append(f"| {row.change} | {s['AP']:.3f} | {s['AP'] - base:+.3f} | {s['APm']:.3f} | {s['APl']:.3f} |")
    lines += ["", "| joint | mean dx (px) | mean dy (px) | RMS (px) | joints |", "| --- | --- | --- | --- | --- |"]
    for name, (dx, dy, rms, count) in zip(joint_set.names, offsets):
        if count:
            lines.append(f"| {name} | {dx:+.2f} | {dy:+.2f} | {rms:.2f} | {int(count)} |")
        else:
            lines.append(f"| {name} | - | - | - | 0 |")
    return "\n".join(lines)
