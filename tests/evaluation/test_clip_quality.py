"""What a viewer sees scored on hand-made frames: matches, precision, and limbs joining two people."""
import numpy as np

import pytest

from pose_stream.evaluation.clip_quality import ClipQuality, score_clip, score_frame
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


def test_an_unlabelled_joint_drawn_where_it_is_belongs_to_its_person_when_positions_are_known():
    """A far-side ear (unlabelled, as COCO zeroes it) drawn behind its own head: with labels alone the nearest
    labelled ear is the other person's, a false crossing; with every joint's true position it is nobody's cross.
    A limb that really takes the other person's wrist is counted either way."""
    positions = np.stack([_person(100), _person(160)])[:, :, :2]
    truth = np.concatenate([positions, np.full((2, 17, 1), 2.0, np.float32)], axis=2)
    truth[0, 3] = 0  # person 0's left ear: unlabelled, x = y = 0
    predicted = truth[:1].copy()
    predicted[0, :, :2] = positions[0]
    predicted[0, :, 2] = 0.9
    predicted[0, 9, :2] = positions[1, 9]  # and the left wrist taken from person 1
    ear_limbs = sum(3 in limb for limb in COCO.skeleton)
    wrist_limbs = sum(9 in limb for limb in COCO.skeleton)
    labels_only, known = ClipQuality(), ClipQuality()
    score_frame(labels_only, predicted, np.array([0.9]), truth, COCO)
    score_frame(known, predicted, np.array([0.9]), truth, COCO, positions=positions)
    assert labels_only.cross_limbs == ear_limbs + wrist_limbs
    assert known.cross_limbs == wrist_limbs
    assert score_clip([(predicted, np.array([0.9]), truth, positions)], COCO).cross_limbs == wrist_limbs
    with pytest.raises(ValueError, match="positions hold 1 people, the labels 2"):
        score_frame(ClipQuality(), predicted, np.array([0.9]), truth, COCO, positions=positions[:1])
