"""Training targets at one output stride: Gaussian heatmaps, the loss mask, joint lists for the tags.

Position convention: a keypoint at input pixel x (OpenCV convention, pixel centres at integers) gets
its Gaussian centred at x / stride - 0.5 on the stride-`stride` map. The decoder reads a peak at map
index i as input position (i + 0.5) * stride (+- its quarter-pixel adjust), so this centre makes the
decoded position land on x; the reference's integer centre int(x / stride) is the same on average.
"""
from __future__ import annotations

import cv2
import numpy as np


def _usable(x: float, y: float, v: float, width: float, height: float) -> bool:
    """A joint gets a target when it is labelled and lies inside the input (width x height pixels)."""
    return v > 0 and 0 <= x < width and 0 <= y < height


def gaussian_heatmaps(keypoints: np.ndarray, size: int | tuple[int, int], stride: int, sigma: float = 2.0) -> np.ndarray:
    """(K, h, w) float32: per joint, the max over people of a unit-peak Gaussian (sigma in map pixels).

    keypoints: (P, K, 3) in input pixels; joints with visibility 0 or outside the input are skipped.
    size: the map's (h, w), or one number for a square map.
    """
    height, width = (size, size) if isinstance(size, int) else size
    num_people, num_joints = keypoints.shape[:2]
    maps = np.zeros((num_joints, height, width), dtype=np.float32)
    radius = int(np.ceil(3 * sigma)) + 1
    for p in range(num_people):
        for k in range(num_joints):
            x, y, v = keypoints[p, k]
            if not _usable(x, y, v, width * stride, height * stride):
                continue
            cx, cy = x / stride - 0.5, y / stride - 0.5
            x0, x1 = max(0, int(cx) - radius), min(width, int(cx) + radius + 2)
            y0, y1 = max(0, int(cy) - radius), min(height, int(cy) + radius + 2)
            gx = np.exp(-((np.arange(x0, x1) - cx) ** 2) / (2 * sigma**2))
            gy = np.exp(-((np.arange(y0, y1) - cy) ** 2) / (2 * sigma**2))
            np.maximum(maps[k, y0:y1, x0:x1], np.outer(gy, gx), out=maps[k, y0:y1, x0:x1])
    return maps


def loss_mask(ignore: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32: 1 where the loss counts, 0 where the input-resolution `ignore` mask covers
    at least half of an output pixel."""
    covered = cv2.resize(ignore.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return (covered < 0.5).astype(np.float32)


def joint_indices(keypoints: np.ndarray, size: int, stride: int, max_people: int = 30) -> np.ndarray:
    """(max_people, K, 2) int64: per person and joint, (flat index y * size + x on the stride map, valid).

    The tag of joint k of person p is read at that index of tag channel k. People beyond max_people
    are dropped; a joint is valid when labelled and inside the input.
    """
    num_people, num_joints = keypoints.shape[:2]
    out = np.zeros((max_people, num_joints, 2), dtype=np.int64)
    for p in range(min(num_people, max_people)):
        for k in range(num_joints):
            x, y, v = keypoints[p, k]
            if not _usable(x, y, v, size * stride, size * stride):
                continue
            out[p, k] = (int(y // stride) * size + int(x // stride), 1)
    return out
