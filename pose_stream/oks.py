"""Object keypoint similarity (COCO's OKS): how alike two poses of one person are, in 0..1.

    OKS(a, b) = mean over the joints in use of exp(-d² / (2 · area · (2σ_k)²))

d: pixel distance between the two positions of joint k; σ_k: the joint set's falloff (`JointSet.sigmas`);
area: the reference person's size in square pixels (the joints' bounding box when not given). It is the
similarity COCO evaluation matches people with, and the one tracking associates people with: a pixel
distance scaled by the person's size and by how precisely each joint can be placed.

Shapes: N poses compared with P reference poses, K joints; positions are the first two values of the last axis.
"""
from __future__ import annotations

import numpy as np


def joint_box_area(keypoints: np.ndarray, used: np.ndarray | None = None, minimum: float = 1.0) -> np.ndarray:
    """(P, K, >=2) positions [with (P, K) bool `used`] -> (P,) area of each pose's joint bounding box."""
    xy = np.asarray(keypoints, np.float64)[..., :2]
    if used is None:
        used = np.ones(xy.shape[:2], bool)
    big, small = np.where(used[..., None], xy, -np.inf), np.where(used[..., None], xy, np.inf)
    extent = big.max(axis=1) - small.min(axis=1)  # (P, 2); -inf where no joint is used
    area = np.where(used.any(axis=1), extent[:, 0] * extent[:, 1], 0.0)
    return np.maximum(area, minimum)


def joint_similarities(poses: np.ndarray, references: np.ndarray, sigmas: np.ndarray, areas: np.ndarray
                       ) -> np.ndarray:
    """(N, K, >=2) poses, (P, K, >=2) references, (K,) sigmas, (P,) areas -> (N, P, K) per-joint similarity
    exp(-d² / (2 · area · (2σ)²))."""
    a = np.asarray(poses, np.float64)[..., :2]
    b = np.asarray(references, np.float64)[..., :2]
    variance = (2 * np.asarray(sigmas, np.float64)) ** 2                      # (K,)
    squared = ((a[:, None] - b[None]) ** 2).sum(axis=-1)                      # (N, P, K)
    return np.exp(-squared / variance / (np.asarray(areas, np.float64)[None, :, None] + np.spacing(1)) / 2)


def oks_matrix(poses: np.ndarray, references: np.ndarray, sigmas: np.ndarray,
               used: np.ndarray | None = None, areas: np.ndarray | None = None) -> np.ndarray:
    """OKS of every pose with every reference pose.

    Args:
        poses: (N, K, >=2) positions.
        references: (P, K, >=2) positions.
        sigmas: (K,) per-joint falloff.
        used: (P, K) bool, the reference joints the mean runs over (default: all); a reference with none gets 0.
        areas: (P,) reference sizes in square pixels (default: bounding box of the used joints, at least 1).
    Returns:
        (N, P) float64 in [0, 1].
    """
    if used is None:
        used = np.ones(np.shape(references)[:2], bool)
    if areas is None:
        areas = joint_box_area(references, used)
    similarity = joint_similarities(poses, references, sigmas, areas)
    counts = used.sum(axis=1)                                                  # (P,)
    total = (similarity * used[None]).sum(axis=-1)
    return np.where(counts[None] > 0, total / np.maximum(counts[None], 1), 0.0)


def oks(pose: np.ndarray, reference: np.ndarray, sigmas: np.ndarray, used: np.ndarray | None = None,
        area: float | None = None) -> float:
    """OKS of one (K, >=2) pose with one (K, >=2) reference (see `oks_matrix`)."""
    return float(oks_matrix(np.asarray(pose)[None], np.asarray(reference)[None], sigmas,
                            None if used is None else np.asarray(used)[None],
                            None if area is None else np.asarray([area], np.float64))[0, 0])
