"""COCO keypoint evaluation (pycocotools COCOeval, iouType 'keypoints') and the COCO results format.

Results follow the reference: one result per person, keypoints [x1, y1, v1, ...] with v the joint value,
score = the person score, category 1; no OKS-NMS and no rescoring. OKS uses the joint set's sigmas, so
CrowdPose sets are scored with their 14 sigmas.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pose_stream.errors import PoseStreamError
from pose_stream.evaluation.annotations import (
    PERSON_CATEGORY_ID,
    KeypointAnnotations,
    load_keypoint_annotations,
    quiet_stdout,
)
from pose_stream.joints import JointSet
from pose_stream.poses import Poses

log = logging.getLogger(__name__)

# The order of COCOeval.stats for iouType 'keypoints'.
STAT_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
_STAT_LABELS = {
    "AP": "AP @ OKS 0.50:0.95", "AP50": "AP @ OKS 0.50", "AP75": "AP @ OKS 0.75",
    "APm": "AP medium", "APl": "AP large",
    "AR": "AR @ OKS 0.50:0.95", "AR50": "AR @ OKS 0.50", "AR75": "AR @ OKS 0.75",
    "ARm": "AR medium", "ARl": "AR large",
}

Predictions = Mapping[int, Poses] | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class EvalReport:
    """The ten COCO keypoint numbers for one set of predictions.

    Attributes:
        stats: STAT_NAMES -> value in [0, 1]; -1 where the set has no ground truth for that breakdown.
        joint_set: name of the layout evaluated ("coco", "crowdpose").
        num_images: images evaluated.
        num_results: person results scored.
        log: what pycocotools printed while evaluating.
    """

    stats: dict[str, float]
    joint_set: str
    num_images: int
    num_results: int
    log: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if tuple(self.stats) != STAT_NAMES:
            raise ValueError(f"stats must have the keys {STAT_NAMES} in that order")

    @property
    def ap(self) -> float:
        return self.stats["AP"]

    def table(self) -> str:
        """A Markdown table of the ten numbers."""
        rows = ["| metric | value |", "| --- | --- |"]
        rows += [f"| {_STAT_LABELS[name]} ({name}) | {_format_stat(value)} |" for name, value in self.stats.items()]
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"stats": dict(self.stats), "joint_set": self.joint_set,
                "num_images": self.num_images, "num_results": self.num_results}


def _format_stat(value: float) -> str:
    return "n/a" if value < 0 else f"{value:.3f}"


def poses_to_results(predictions: Mapping[int, Poses]) -> list[dict[str, Any]]:
    """COCO keypoint results: one entry per person, keypoints flattened [x1, y1, v1, ...], score = person score."""
    results: list[dict[str, Any]] = []
    for image_id, poses in predictions.items():
        for keypoints, score in zip(poses.keypoints, poses.scores):
            results.append({
                "image_id": _json_id(image_id),
                "category_id": PERSON_CATEGORY_ID,
                "keypoints": [round(float(v), 3) for v in keypoints.reshape(-1)],
                "score": round(float(score), 6),
            })
    return results


def as_results(predictions: Predictions) -> list[dict[str, Any]]:
    """COCO results from Poses per image id; a results list is returned as a new list of the same dicts."""
    return poses_to_results(predictions) if isinstance(predictions, Mapping) else list(predictions)


def as_annotations(annotations: str | os.PathLike | dict[str, Any] | KeypointAnnotations,
                   joint_set: str | JointSet | None = None) -> KeypointAnnotations:
    """Validated annotations from a path or parsed dict; KeypointAnnotations pass through."""
    if isinstance(annotations, KeypointAnnotations):
        return annotations
    return load_keypoint_annotations(annotations, joint_set)


def _json_id(image_id: Any) -> Any:
    return int(image_id) if isinstance(image_id, (np.integer, int)) else image_id


def write_results(results: Predictions, path: str | os.PathLike) -> Path:
    """Write COCO keypoint results json (from poses per image id, or an already-built results list)."""
    listed = poses_to_results(results) if isinstance(results, Mapping) else list(results)
    out = Path(path)
    if out.parent and not out.parent.exists():
        raise PoseStreamError(f"cannot write results: folder {out.parent} does not exist")
    out.write_text(json.dumps(listed), encoding="utf-8")
    return out


def evaluate(
    predictions: Predictions,
    annotations: str | os.PathLike | dict[str, Any] | KeypointAnnotations,
    joint_set: str | JointSet | None = None,
    image_ids: Sequence[int] | None = None,
) -> EvalReport:
    """Score predictions with COCOeval (iouType 'keypoints') and the joint set's OKS sigmas.

    Args:
        predictions: Poses per image id, or a COCO results list (dicts with image_id, keypoints, score).
        annotations: the ground truth: a person_keypoints json path, its parsed dict, or KeypointAnnotations.
        joint_set: layout name or JointSet; None infers it from the annotations' keypoint count.
        image_ids: evaluate only these images (default: every image in the annotations).
    """
    from pose_stream._optional import require

    cocoeval = require("pycocotools.cocoeval", "COCO keypoint evaluation")
    gt = as_annotations(annotations, joint_set)
    layout = gt.joint_set
    if joint_set is not None:
        wanted = joint_set.name if isinstance(joint_set, JointSet) else joint_set
        if wanted.lower() != layout.name:
            raise PoseStreamError(f"the annotations use the {layout.name} layout, not {wanted}")
    results = as_results(predictions)
    _check_results(results, layout, set(gt.image_ids))
    ids = list(gt.image_ids if image_ids is None else image_ids)
    unknown = set(ids) - set(gt.image_ids)
    if unknown:
        raise PoseStreamError(f"image ids not in the annotations: {sorted(unknown)[:5]}")
    coco_gt = gt.to_coco()
    with quiet_stdout("pycocotools evaluation") as printed:
        coco_dt = _load_results(coco_gt, results)
        evaluator = cocoeval.COCOeval(coco_gt, coco_dt, "keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(layout.sigmas, dtype=np.float64)
        evaluator.params.imgIds = ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats)}
    evaluated = set(ids)
    return EvalReport(stats=stats, joint_set=layout.name, num_images=len(ids),
                      num_results=sum(1 for r in results if r["image_id"] in evaluated), log=printed.getvalue())


def _check_results(results: list[Mapping[str, Any]], layout: JointSet, image_ids: set) -> None:
    want = 3 * layout.num_joints
    for index, result in enumerate(results):
        if "image_id" not in result or "keypoints" not in result or "score" not in result:
            raise PoseStreamError(f"result #{index} needs image_id, keypoints and score")
        if len(result["keypoints"]) != want:
            raise PoseStreamError(
                f"result #{index} has {len(result['keypoints'])} keypoint values; the {layout.name} layout needs {want}"
            )
        if result["image_id"] not in image_ids:
            raise PoseStreamError(f"result #{index} is for image id {result['image_id']!r}, which the annotations lack")


def _load_results(coco_gt, results: list[Mapping[str, Any]]):
    """COCO.loadRes on a copy (it adds area/bbox/id to each result); an empty list gives an empty result set."""
    if results:
        return coco_gt.loadRes(copy.deepcopy([dict(r) for r in results]))
    from pycocotools.coco import COCO

    empty = COCO()
    empty.dataset = {"images": list(coco_gt.dataset["images"]),
                     "categories": copy.deepcopy(coco_gt.dataset["categories"]), "annotations": []}
    empty.createIndex()
    return empty
