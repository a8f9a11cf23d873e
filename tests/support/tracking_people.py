"""Synthetic people for tracking tests: a standing COCO skeleton, scaled, moved in straight lines, with noise."""
from __future__ import annotations

import numpy as np

from pose_stream.poses import Poses

# x, y of the 17 COCO joints of a person 1 unit tall, feet at y = 0, centred on x = 0 (y grows downwards)
SKELETON = np.array([
    [0, -0.93], [-0.03, -0.95], [0.03, -0.95], [-0.06, -0.93], [0.06, -0.93],   # nose, eyes, ears
    [-0.12, -0.8], [0.12, -0.8], [-0.16, -0.62], [0.16, -0.62], [-0.17, -0.46], [0.17, -0.46],  # arms
    [-0.09, -0.5], [0.09, -0.5], [-0.09, -0.26], [0.09, -0.26], [-0.09, 0.0], [0.09, 0.0],     # legs
])


def person(x: float, feet_y: float, height: float, value: float = 0.9) -> np.ndarray:
    """(17, 3) keypoints of a person standing at x with their feet at feet_y."""
    xy = SKELETON * height + [x, feet_y]
    return np.concatenate([xy, np.full((17, 1), value)], axis=1).astype(np.float32)


def frame(people: list[np.ndarray], rng: np.random.Generator | None = None, noise: float = 1.0) -> Poses:
    if not people:
        return Poses.empty()
    keypoints = np.stack(people).astype(np.float32)
    if rng is not None:
        keypoints[:, :, :2] += rng.normal(0, noise, keypoints[:, :, :2].shape)
    return Poses(keypoints, np.full(len(people), 0.8, np.float32))


def walkers(starts: list[tuple[float, float, float, float]], frames: int, rng: np.random.Generator,
            order_seed: int = 0) -> tuple[list[Poses], list[list[int]]]:
    """People (x0, feet_y, height, pixels per frame) walking for `frames` frames, listed in a shuffled order each
    frame (as a detector would). Returns the frames and, per frame, the walker index of each listed person."""
    shuffle = np.random.default_rng(order_seed)
    out, who = [], []
    for t in range(frames):
        order = shuffle.permutation(len(starts)).tolist()
        out.append(frame([person(starts[i][0] + starts[i][3] * t, starts[i][1], starts[i][2]) for i in order], rng))
        who.append(order)
    return out, who


WALKERS = [(100, 300, 180, 3.0), (400, 280, 150, -2.0), (250, 200, 90, 1.0)]


def walkers_at(t: int) -> list[np.ndarray]:
    return [person(x + v * t, y, h) for x, y, h, v in WALKERS]


class WalkerEstimator:
    """Stage estimator whose people are the walkers at the frame number written into the image, listed in an
    order that changes every frame (as a detector's would), with a little noise."""

    backend_info = "walkers"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def prepare(self, image):
        return int(image[0, 0, 0])

    def infer(self, t):
        return t

    def aggregate(self, t):
        return t

    def group(self, t):
        order = np.random.default_rng(t).permutation(len(WALKERS))
        walkers = walkers_at(t)
        return frame([walkers[i] for i in order], self.rng, noise=1.0)

    def close(self):
        pass


def numbered_frames(num_frames, size):
    """Frames (a GeneratedSource factory) whose pixels hold the frame number modulo 256."""
    for t in range(num_frames):
        yield np.full((size[1], size[0], 3), t % 256, np.uint8)
