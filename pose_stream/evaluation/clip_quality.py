"""How right the people on a clip with ground truth look: what a viewer of the annotated video sees.

Per frame, the predicted people that are drawn (person score >= min_score; a limb is drawn when both of its
joints have value >= min_joint) are matched one to one with the labelled people by OKS (COCO's per-joint
sigmas; area = the labelled joints' bounding box), in descending score, at OKS >= 0.5. A drawn limb "joins two
people" when its two joints lie nearest to joints of two different people: each drawn joint is given to the
person whose same joint is nearest. Where the scene knows every joint's position (`positions`: the synthetic
scenes do), unlabelled joints count too, so a far-side ear drawn behind its own head is that person's; with
labels alone (COCO zeroes unlabelled joints), only labelled joints can own one, and such an ear is given to
whoever has a labelled ear nearby. Shapes: K joints, P labelled people, N predicted people.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from pose_stream.joints import JointSet
from pose_stream.oks import oks_matrix

OKS_MATCH = 0.5


@dataclass
class ClipQuality:
    """Counts over a clip; the rates are properties.

    Attributes:
        frames: frames scored. labelled: labelled people (with at least one labelled joint). drawn: drawn people.
        matched: labelled people matched at OKS >= 0.5. limbs: drawn limbs. cross_limbs: drawn limbs joining two
        labelled people. long_cross_limbs: of those, longer than 3 times the longest real limb of the same kind
        in the frame. frames_with_cross: frames with at least one. joint_errors: pixel errors of the matched
        people's visible joints.
    """

    frames: int = 0
    labelled: int = 0
    drawn: int = 0
    matched: int = 0
    limbs: int = 0
    cross_limbs: int = 0
    long_cross_limbs: int = 0
    frames_with_cross: int = 0
    joint_errors: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.matched / self.labelled if self.labelled else float("nan")

    @property
    def precision(self) -> float:
        return self.matched / self.drawn if self.drawn else float("nan")

    @property
    def cross_limb_rate(self) -> float:
        return self.cross_limbs / self.limbs if self.limbs else 0.0

    @property
    def cross_frame_rate(self) -> float:
        return self.frames_with_cross / self.frames if self.frames else 0.0

    def to_dict(self) -> dict:
        errors = np.asarray(self.joint_errors, np.float64)
        return {
            "frames": self.frames, "labelled": self.labelled, "drawn": self.drawn, "matched": self.matched,
            "recall": _round(self.recall), "precision": _round(self.precision),
            "limbs": self.limbs, "cross_limbs": self.cross_limbs, "cross_limb_rate": _round(self.cross_limb_rate),
            "long_cross_limbs": self.long_cross_limbs, "frames_with_cross": self.frames_with_cross,
            "cross_frame_rate": _round(self.cross_frame_rate),
            "joint_error_px": {"mean": _round(errors.mean()) if errors.size else None,
                               "median": _round(float(np.median(errors))) if errors.size else None},
        }


def score_frame(quality: ClipQuality, predicted: np.ndarray, scores: np.ndarray, labelled: np.ndarray,
                joint_set: JointSet, min_score: float = 0.15, min_joint: float = 0.1,
                positions: np.ndarray | None = None) -> None:
    """Add one frame: predicted (N, K, 3) x, y, value with person scores (N,); labelled (P, K, 3) x, y, v;
    positions (P, K, 2): every joint's true position, labelled or not (None: labelled joints only)."""
    sigmas = np.asarray(joint_set.sigmas, np.float64)
    if positions is not None and len(positions) != len(labelled):
        raise ValueError(f"positions hold {len(positions)} people, the labels {len(labelled)}")
    if len(labelled):
        kept = (labelled[:, :, 2] > 0).any(axis=1)
        labelled = labelled[kept]
        positions = positions[kept] if positions is not None else None
    keep = scores >= min_score
    predicted, scores = predicted[keep], scores[keep]
    quality.frames += 1
    quality.labelled += len(labelled)
    quality.drawn += len(predicted)
    # one-to-one matching by OKS, highest person score first (as COCO matches detections)
    taken: set[int] = set()
    similarity = oks_matrix(predicted, labelled, sigmas, used=labelled[:, :, 2] > 0) if len(labelled) else None
    for n in np.argsort(-scores, kind="stable"):
        values = [similarity[n, p] if p not in taken else -1.0 for p in range(len(labelled))]
        if values and max(values) >= OKS_MATCH:
            p = int(np.argmax(values))
            taken.add(p)
            quality.matched += 1
            visible = (labelled[p, :, 2] > 1) & (predicted[n, :, 2] >= min_joint)
            quality.joint_errors.extend(np.linalg.norm(predicted[n, visible, :2] - labelled[p, visible, :2], axis=1))
    if not len(labelled):
        for person in predicted:
            quality.limbs += sum(person[a, 2] >= min_joint and person[b, 2] >= min_joint for a, b in joint_set.skeleton)
        return
    crossed = False
    for person in predicted:
        for a, b in joint_set.skeleton:
            if person[a, 2] < min_joint or person[b, 2] < min_joint:
                continue
            quality.limbs += 1
            owner_a = _nearest_owner(person[a, :2], labelled, positions, a)
            owner_b = _nearest_owner(person[b, :2], labelled, positions, b)
            if owner_a is not None and owner_b is not None and owner_a != owner_b:
                quality.cross_limbs += 1
                crossed = True
                if np.linalg.norm(person[a, :2] - person[b, :2]) > 3 * _longest_limb(labelled, a, b):
                    quality.long_cross_limbs += 1
    quality.frames_with_cross += crossed


def score_clip(frames: Iterable[tuple[np.ndarray, ...]], joint_set: JointSet, min_score: float = 0.15,
               min_joint: float = 0.1) -> ClipQuality:
    """(predicted keypoints, person scores, labelled keypoints[, positions]) per frame -> ClipQuality."""
    quality = ClipQuality()
    for predicted, scores, labelled, *positions in frames:
        score_frame(quality, predicted, scores, labelled, joint_set, min_score, min_joint, *positions)
    return quality


def _nearest_owner(xy: np.ndarray, labelled: np.ndarray, positions: np.ndarray | None, joint: int) -> int | None:
    """The person whose `joint` is nearest to xy: among all people by true position when known, else among
    those in whom it is labelled."""
    if positions is not None:
        candidates, where = np.arange(len(positions)), positions[:, joint]
    else:
        candidates = np.flatnonzero(labelled[:, joint, 2] > 0)
        where = labelled[candidates, joint, :2]
    if not candidates.size:
        return None
    distances = np.linalg.norm(where - xy, axis=1)
    return int(candidates[int(np.argmin(distances))])


def _longest_limb(labelled: np.ndarray, a: int, b: int) -> float:
    both = (labelled[:, a, 2] > 0) & (labelled[:, b, 2] > 0)
    if not both.any():
        return 1.0
    return float(np.linalg.norm(labelled[both, a, :2] - labelled[both, b, :2], axis=1).max())


def _round(value: float) -> float | None:
    return None if value != value else round(float(value), 4)
