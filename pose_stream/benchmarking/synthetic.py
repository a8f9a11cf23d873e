"""Generated clips for benchmarks: frames showing a known number of people, and those people's joints.

The frames give the engine real images to chew on; the known joints let `synthetic.outputs` render the
network outputs such people would produce, a decoding load that follows the number of people even when the
network has random weights (whose heatmaps find nobody). Frames are stick figures drawn at people from
`synthetic.outputs.random_people`, or, where the network's own outputs are decoded (so what it sees matters),
scenes of the demo's synthetic world (`pose_stream.synthetic.scenes`) when it can place that many people. A frame is exactly network-input sized, so image pixels are network-input pixels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from pose_stream.joints import COCO, JointSet
from pose_stream.synthetic.outputs import SyntheticPeople, random_people

log = logging.getLogger(__name__)

# Scenes of the demo world tried per wanted frame: it draws 1..max_people people per scene, so an exact count
# takes a few tries, and large counts rarely fit (it gives up when the first frame's tries find none).
DEMO_TRIES_PER_FRAME = 12


@dataclass(frozen=True)
class Scene:
    """One generated frame: BGR uint8 (h, w, 3) and the people in it (network-input pixels)."""

    frame: np.ndarray
    people: SyntheticPeople


def make_scenes(people: int, size: tuple[int, int], joint_set: JointSet, count: int, seed: int,
                demo_world: bool = False) -> list[Scene]:
    """`count` frames of size=(w, h) with exactly `people` people each: stick figures, or with demo_world
    the demo's synthetic scenes where it can make them."""
    scenes = demo_world_scenes(people, size, joint_set, count, seed) if demo_world else None
    if scenes is not None:
        return scenes
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        known = random_people(rng, people, size, joint_set)
        out.append(Scene(stick_figure_frame(known, size, joint_set, rng), known))
    return out


def draw_people(frame: np.ndarray, people: SyntheticPeople, joint_set: JointSet) -> np.ndarray:
    """Stick figures of the visible joints drawn in place on a BGR frame; returns the frame."""
    for person, visible in zip(people.keypoints, people.visible):
        thickness = max(2, int(np.ptp(person[:, 1]) / 40))
        for limb, (a, b) in enumerate(joint_set.skeleton):
            if visible[a] and visible[b]:
                cv2.line(frame, _pixel(person[a]), _pixel(person[b]), joint_set.limb_color(limb), thickness,
                         cv2.LINE_AA)
        for joint in np.flatnonzero(visible):
            cv2.circle(frame, _pixel(person[joint]), thickness + 1, joint_set.joint_color(joint), -1, cv2.LINE_AA)
    return frame


def stick_figure_frame(people: SyntheticPeople, size: tuple[int, int], joint_set: JointSet,
                       rng: np.random.Generator) -> np.ndarray:
    """A (h, w, 3) BGR frame: a noisy grey background with the people drawn on it."""
    width, height = size
    frame = rng.integers(60, 120, (height, width, 3), dtype=np.uint8)
    return draw_people(frame, people, joint_set)


def _pixel(xy: np.ndarray) -> tuple[int, int]:
    return int(xy[0]), int(xy[1])


def demo_world_scenes(people: int, size: tuple[int, int], joint_set: JointSet, count: int,
                      seed: int) -> list[Scene] | None:
    """Scenes of the demo's synthetic world with exactly `people` labelled people, or None where the joint set
    is not COCO (the world draws COCO figures), or the world does not make scenes of that count often enough
    (see DEMO_TRIES_PER_FRAME)."""
    from pose_stream.synthetic.scenes import SceneConfig, synthetic_image as make_image

    if joint_set.name != COCO.name or people < 1:
        return None
    config = SceneConfig(sizes=(tuple(size),), max_people=people)
    scenes: list[Scene] = []
    for index in range(count * DEMO_TRIES_PER_FRAME):
        if index == DEMO_TRIES_PER_FRAME and not scenes:
            break
        image = make_image(seed, index, config)
        if len(image.people) == people:
            keypoints = np.stack([person.keypoints for person in image.people])
            scenes.append(Scene(image.image, _known_people(keypoints)))
            if len(scenes) == count:
                return scenes
    log.info("the demo world rarely places %d people in one scene; drawing stick figures", people)
    return None


def _known_people(keypoints: np.ndarray, tag_spacing: float = 2.0) -> SyntheticPeople:
    """SyntheticPeople from labelled keypoints (P, K, 3) (v > 0 labelled): tags apart by tag_spacing."""
    count = keypoints.shape[0]
    tags = tag_spacing * (np.arange(count) - count / 2.0) + 0.25
    return SyntheticPeople(keypoints[..., :2].astype(np.float64), keypoints[..., 2] > 0, tags, tags[::-1] - 0.5,
                           np.ones(count))
