"""Pose priors: random poses for still images, and the walking cycle the animation also uses."""
from __future__ import annotations

import numpy as np

from pose_stream.synthetic.figure import LimbAngles, PoseAngles

_DEG = np.pi / 180


def walking_pose(phase: float, yaw: float, stride: float = 1.0, roll: float = 0.0, head_yaw: float = 0.0,
                 arm_bend: float = 20 * _DEG) -> PoseAngles:
    """A walking figure at `phase` (radians, one cycle = two steps); stride 0 stands still.

    Legs swing opposite to each other, each arm opposite to its leg; the knee bends while its leg
    swings forward.
    """
    swing = np.sin(phase)
    hip = 28 * _DEG * stride
    knee_left = (8 + 45 * max(0.0, np.sin(phase + 0.9))) * _DEG * max(stride, 0.15)
    knee_right = (8 + 45 * max(0.0, np.sin(phase + np.pi + 0.9))) * _DEG * max(stride, 0.15)
    arm = 22 * _DEG * stride
    return PoseAngles(
        yaw=yaw, roll=roll, stoop=4 * _DEG * stride, head_yaw=head_yaw,
        left_leg=LimbAngles(flex=hip * swing, abduct=3 * _DEG, bend=knee_left),
        right_leg=LimbAngles(flex=-hip * swing, abduct=3 * _DEG, bend=knee_right),
        left_arm=LimbAngles(flex=-arm * swing, abduct=8 * _DEG, bend=arm_bend),
        right_arm=LimbAngles(flex=arm * swing, abduct=8 * _DEG, bend=arm_bend),
    )


def _random_arm(rng: np.random.Generator) -> LimbAngles:
    if rng.random() < 0.5:  # relaxed
        return LimbAngles(flex=rng.uniform(-30, 40) * _DEG, abduct=rng.uniform(0, 35) * _DEG,
                          bend=rng.uniform(0, 90) * _DEG, twist=rng.uniform(-40, 40) * _DEG)
    return LimbAngles(flex=rng.uniform(-40, 170) * _DEG, abduct=rng.uniform(0, 150) * _DEG,
                      bend=rng.uniform(0, 145) * _DEG, twist=rng.uniform(-90, 90) * _DEG)


def _random_leg(rng: np.random.Generator, crouch: float) -> LimbAngles:
    flex = rng.uniform(-25, 45) * _DEG + crouch * 70 * _DEG
    return LimbAngles(flex=flex, abduct=rng.uniform(0, 35) * _DEG,
                      bend=min(rng.uniform(0, 50) * _DEG + crouch * 90 * _DEG, 140 * _DEG),
                      twist=rng.uniform(-20, 20) * _DEG)


def random_pose(rng: np.random.Generator) -> PoseAngles:
    """A pose from a broad prior: a third walking, the rest free limbs (some crouching)."""
    yaw = rng.uniform(-90, 90) * _DEG
    roll = rng.normal(0, 6) * _DEG
    head_yaw = rng.uniform(-30, 30) * _DEG
    if rng.random() < 0.33:
        return walking_pose(rng.uniform(0, 2 * np.pi), yaw, stride=rng.uniform(0.3, 1.3), roll=roll,
                            head_yaw=head_yaw, arm_bend=rng.uniform(5, 70) * _DEG)
    crouch = rng.uniform(0, 1) if rng.random() < 0.2 else 0.0
    return PoseAngles(
        yaw=yaw, roll=roll, stoop=rng.uniform(-8, 30) * _DEG, head_yaw=head_yaw,
        head_pitch=rng.uniform(-15, 25) * _DEG,
        left_arm=_random_arm(rng), right_arm=_random_arm(rng),
        left_leg=_random_leg(rng, crouch), right_leg=_random_leg(rng, crouch),
    )
