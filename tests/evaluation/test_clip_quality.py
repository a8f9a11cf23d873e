"""What a viewer sees scored on hand-made frames: matches, precision, and limbs joining two people."""
import numpy as np

from pose_stream.evaluation.clip_quality import ClipQuality, score_frame
from pose_stream.joints import COCO


def _person(x: float) -> np.ndarray:
    k = np.arange(17)
    xy = np.stack([x + 30 * np.sin(k), 300 - 200 * k / 17], axis=1)
    return np.concatenate([xy, np.full((17, 1), 2.0)], axis=1).astype(np.float32)


def test_right_people_no_crossings():
    truth = np.stack([_person(100), _person(400)])
    predicted = truth.copy()
    predicted[:, :, 2] = 0.9
    quality = ClipQuality()
    score_frame(quality, predicted, np.array([0.9, 0.8]), truth, COCO)
    assert (quality.recall, quality.precision, quality.cross_limbs) == (1.0, 1.0, 0)
    assert quality.limbs == 2 * len(COCO.skeleton) and max(quality.joint_errors) == 0


def test_a_limb_joining_two_people_and_a_low_score_person_not_drawn():
    truth = np.stack([_person(100), _person(400)])
    mixed = truth[0].copy()
    mixed[:, 2] = 0.9
    mixed[9, :2] = truth[1, 9, :2]  # left wrist taken from the other person
    ghost = truth[1].copy()
    ghost[:, 2] = 0.9
    quality = ClipQuality()
    score_frame(quality, np.stack([mixed, ghost]), np.array([0.9, 0.05]), truth, COCO, min_score=0.15)
    wrist_limbs = sum(9 in limb for limb in COCO.skeleton)
    assert quality.drawn == 1 and quality.cross_limbs == wrist_limbs and quality.frames_with_cross == 1
    assert quality.recall == 0.5 and quality.precision == 1.0
