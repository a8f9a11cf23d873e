"""The animated synthetic world: people walk across a fixed scene, stop, turn, wave, enter and leave.

`demo_frames()` is the `--source demo` video: a generator of BGR frames with ground-truth keypoints.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from pose_stream.synthetic.background import SensorNoise, random_background
from pose_stream.synthetic.figure import LimbAngles, Placement, Proportions, skeleton_3d
from pose_stream.synthetic.poses import walking_pose
from pose_stream.synthetic.render import Appearance, Person, draw_people, visibility

_DEG = np.pi / 180


class DemoFrame(NamedTuple):
    """One frame of the demo video: image (H, W, 3) uint8 BGR, keypoints (P, 17, 3) float32 ground truth
    (x, y, visibility 0/1/2 as in COCO) of the people in it, in drawing order, ids (P,) int64: each person's
    identity, the same in every frame they are in (numbered from 1 as people appear), for scoring tracking, and
    positions (P, 17, 2) float32: where every keypoint projects, labelled or not (COCO zeroes the unlabelled ones:
    a far-side ear, a foot out of the frame), for telling whose joint a predicted joint is."""

    image: np.ndarray
    keypoints: np.ndarray
    ids: np.ndarray
    positions: np.ndarray


@dataclass
class _Walker:
    """State of one person in the animation (mutable: it advances every frame)."""

    body: Proportions
    look: Appearance
    x: float  # mid-hip x in pixels
    ground: float  # y of the soles in pixels; lower on screen = nearer = taller
    height: float
    direction: float  # +1 walks right, -1 left
    speed: float  # pixels per second at stride 1
    hip_height: float = 0.0  # mid-hip above the soles, in figure units
    phase: float = 0.0
    yaw: float = 0.0
    pause_left: float = 0.0  # seconds standing still (turned towards the camera, waving)
    wave: bool = False
    id: int = 0


def _hip_height(body: Proportions) -> float:
    """Height of the mid-hip point above the soles, in figure units, for a straight-legged stance."""
    return float(skeleton_3d(walking_pose(0.0, 0.0, stride=0.0), body).keypoints[[15, 16], 1].max()) + 0.025


class _Scene:
    def __init__(self, width: int, height: int, fps: float, rng: np.random.Generator) -> None:
        self.width, self.height, self.fps, self.rng = width, height, fps, rng
        self.background = random_background(rng, width, height)
        self.walkers: list[_Walker] = []
        self.spawned = 0
        self.target = int(rng.integers(3, 6))
        for _ in range(self.target):
            self.walkers.append(self._spawn(anywhere=True))

    def _spawn(self, anywhere: bool) -> _Walker:
        rng, w, h = self.rng, self.width, self.height
        depth = rng.uniform(0, 1)  # 0 far (high on screen, small), 1 near
        height = h * (0.3 + 0.5 * depth) * rng.uniform(0.9, 1.1)
        ground = h * (0.55 + 0.42 * depth)
        direction = float(rng.choice([-1.0, 1.0]))
        margin = 0.4 * height
        x = rng.uniform(margin, w - margin) if anywhere else (-margin if direction > 0 else w + margin)
        body = Proportions.random(rng)
        self.spawned += 1
        return _Walker(body=body, look=Appearance.random(rng), x=float(x), ground=float(ground),
                       height=float(height), hip_height=_hip_height(body), direction=direction,
                       speed=float(height * rng.uniform(0.5, 0.9)), phase=float(rng.uniform(0, 2 * np.pi)),
                       yaw=direction * 70 * _DEG, id=self.spawned)

    def step(self) -> None:
        dt, rng = 1.0 / self.fps, self.rng
        for walker in self.walkers:
            walking_yaw = walker.direction * 70 * _DEG
            if walker.pause_left > 0:
                walker.pause_left -= dt
                target_yaw = 0.0
                if walker.pause_left <= 0 and rng.random() < 0.4:
                    walker.direction *= -1  # turn back the way it came
            else:
                target_yaw = walking_yaw
                walker.x += walker.direction * walker.speed * dt
                walker.phase += 2 * np.pi * dt * walker.speed / (1.1 * walker.height)
                if rng.random() < 0.15 * dt:
                    walker.pause_left = float(rng.uniform(1.0, 3.0))
                    walker.wave = bool(rng.random() < 0.5)
            # Turn smoothly (about 200 degrees per second) towards where the person looks.
            walker.yaw += float(np.clip(target_yaw - walker.yaw, -3.5 * dt, 3.5 * dt))
        off = [w for w in self.walkers if w.x < -0.5 * w.height or w.x > self.width + 0.5 * w.height]
        for walker in off:
            self.walkers.remove(walker)
        while len(self.walkers) < self.target:
            self.walkers.append(self._spawn(anywhere=False))
        if rng.random() < 0.05 * dt:
            self.target = int(rng.integers(2, 7))

    def drawing_order(self) -> list[_Walker]:
        return sorted(self.walkers, key=lambda w: w.ground)

    def people(self, time_s: float) -> list[Person]:
        out = []
        for walker in self.drawing_order():
            standing = walker.pause_left > 0
            pose = walking_pose(walker.phase, walker.yaw, stride=0.0 if standing else 1.0)
            if standing and walker.wave:
                wave = np.sin(2 * np.pi * 1.5 * time_s)
                pose = replace(pose, right_arm=LimbAngles(flex=20 * _DEG, abduct=(120 + 25 * wave) * _DEG,
                                                          bend=(40 + 30 * wave) * _DEG, twist=-80 * _DEG))
            hip_y = walker.ground - walker.hip_height * walker.height
            out.append(Person(pose, walker.body, walker.look, Placement(walker.x, hip_y, walker.height)))
        return out


def demo_frames(width: int = 640, height: int = 360, fps: float = 25.0, seed: int = 0,
                num_frames: int | None = None) -> Iterator[DemoFrame]:
    """Endless (or `num_frames` long) animated synthetic scene as BGR frames with ground truth.

    Deterministic for a given seed and size. Rendering costs a few milliseconds per frame.
    """
    if width < 64 or height < 64 or fps <= 0:
        raise ValueError("demo frames need width, height >= 64 and fps > 0")
    rng = np.random.default_rng(seed)
    scene = _Scene(width, height, fps, rng)
    # The noise draws from a stream of its own, so that how people move does not depend on how noise is made.
    noise = SensorNoise(np.random.default_rng([seed, 1]), width, height, sigma=2.0)
    index = 0
    while num_frames is None or index < num_frames:
        image = scene.background.copy()
        people = scene.people(index / fps)
        owner = draw_people(image, people)
        keypoints = visibility(people, owner)
        image = noise.add(image)
        ids = np.array([w.id for w in scene.drawing_order()], np.int64)
        positions = np.array([person.keypoints_2d for person in people], np.float32).reshape(-1, 17, 2)
        yield DemoFrame(image=image, keypoints=keypoints, ids=ids, positions=positions)
        scene.step()
        index += 1
