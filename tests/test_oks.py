"""OKS against its formula, written out joint by joint."""
import math

import numpy as np
import pytest

from pose_stream.joints import COCO
from pose_stream.oks import joint_box_area, oks, oks_matrix

SIGMAS = np.asarray(COCO.sigmas, np.float64)


def _oks_by_hand(pose, reference, used, area):
    terms = []
    for k in range(len(SIGMAS)):
        if used[k]:
            d2 = (pose[k, 0] - reference[k, 0]) ** 2 + (pose[k, 1] - reference[k, 1]) ** 2
            terms.append(math.exp(-d2 / (2 * area * (2 * SIGMAS[k]) ** 2)))
    return sum(terms) / len(terms) if terms else 0.0


def test_matrix_equals_the_formula_on_random_poses(rng):
    poses = rng.uniform(0, 200, (4, 17, 3))
    references = poses[[2, 0, 3]] + rng.normal(0, 6, (3, 17, 3))
    used = rng.random((3, 17)) > 0.3
    used[1] = False  # a reference with no joint in use
    matrix = oks_matrix(poses, references, SIGMAS, used=used)
    areas = joint_box_area(references, used)
    for n in range(4):
        for p in range(3):
            assert matrix[n, p] == pytest.approx(_oks_by_hand(poses[n], references[p], used[p], areas[p]), abs=1e-12)
    assert (matrix[:, 1] == 0).all()
    assert matrix[2, 0] > 0.5 and matrix[0, 1] == 0 and matrix[3, 2] > 0.5


@pytest.mark.parametrize("shift, expected", [(0.0, 1.0), (10.0, math.exp(-100 / (2 * 10000 * (2 * 0.1) ** 2)))])
def test_single_pair(shift, expected):
    reference = np.zeros((17, 2))
    reference[:, 0] = np.linspace(0, 100, 17)
    reference[:, 1] = np.linspace(0, 100, 17)
    sigmas = np.full(17, 0.1)
    assert oks(reference + [shift, 0], reference, sigmas) == pytest.approx(expected)


def test_area_of_the_used_joints_only():
    keypoints = np.array([[[0, 0], [10, 20], [500, 500]]], np.float64)
    assert joint_box_area(keypoints, np.array([[True, True, False]]))[0] == 200
    assert joint_box_area(keypoints)[0] == 250000
    assert joint_box_area(keypoints, np.array([[False, False, False]]))[0] == 1.0  # at least 1
