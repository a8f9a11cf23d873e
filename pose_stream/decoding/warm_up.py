"""Network outputs that make every decoding kernel run once.

Numba compiles a kernel the first time it runs (or loads it from its cache). The grouping's and refine's kernels
run only where there are people, so a warm-up on a blank image left them to the first real frame: on a fresh
install about 13 s of a 2-core CPU, during which the first frames waited.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pose_stream.decoding.types import ScaleOutputs

LEFT_OUT_JOINT = 0  # missing from every planted person, so that grouping asks refine for it


def with_planted_people(scales: Sequence[ScaleOutputs]) -> tuple[ScaleOutputs, ...]:
    """Copies of host outputs with two people planted in every pass and scale: a 3x3 peak for each of their
    joints but LEFT_OUT_JOINT, and each person's own tag around it."""
    return tuple(ScaleOutputs(_planted(s.outputs), None if s.flipped is None else _planted(s.flipped), s.factor)
                 for s in scales)


def _planted(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    out0, out1 = (np.array(array, np.float32, copy=True) for array in pair)
    joints = out1.shape[0]
    for heatmaps, tags in ((out0[:joints], out0[joints:]), (out1, None)):
        height, width = heatmaps.shape[1:]
        for person in range(2):
            x = int(width * (0.3 + 0.4 * person))
            for joint in range(joints):
                if joint == LEFT_OUT_JOINT:
                    continue
                y = int(height * (0.1 + 0.8 * joint / joints))
                window = np.s_[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2]
                heatmaps[joint][window] = 1.0
                if tags is not None:
                    tags[joint][window] = 2.0 * person
    return out0, out1
