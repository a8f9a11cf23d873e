"""Still scenes of the synthetic world: several posed figures on a background, with their COCO labels.

Every image is a pure function of (seed, index), so a set of N images is the first N images of an endless
sequence and any one of them can be regenerated alone (`pose-stream synth` writes them as a dataset).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_stream.coco_format import PersonAnnotation
from pose_stream.synthetic.background import add_sensor_noise, random_background
from pose_stream.synthetic.figure import Placement, Proportions, project
from pose_stream.synthetic.poses import random_pose
from pose_stream.synthetic.render import Appearance, Person, draw_people, visibility


@dataclass(frozen=True)
class SceneConfig:
    """How still scenes are drawn.

    Attributes:
        sizes: (width, height) choices for the image.
        max_people: people per image are 1..max_people (fewer when they do not fit).
        min_height: smallest figure height in pixels (head top to sole).
        max_height_fraction: largest figure height as a fraction of the image height.
        small_fraction: share of figures drawn between min_height and 2 * min_height.
        max_overlap: largest IoU of two figures' boxes; larger overlaps are re-drawn elsewhere.
        cut_fraction: share of figures allowed to stand partly outside the image.
        max_noise: largest sensor-noise sigma (grey levels).
    """

    sizes: tuple[tuple[int, int], ...] = ((320, 256), (256, 320), (320, 320), (384, 288), (288, 384), (384, 256), (448, 256))
    max_people: int = 5
    min_height: float = 30.0
    max_height_fraction: float = 0.95
    small_fraction: float = 0.1
    max_overlap: float = 0.3
    cut_fraction: float = 0.15
    max_noise: float = 6.0

    def __post_init__(self) -> None:
        if not self.sizes or any(w < 32 or h < 32 for w, h in self.sizes):
            raise ValueError("image sizes must be at least 32x32")
        if self.max_people < 1 or self.min_height < 8 or not 0 < self.max_height_fraction <= 1.5:
            raise ValueError("max_people >= 1, min_height >= 8 and 0 < max_height_fraction <= 1.5 required")
        if not (0 <= self.small_fraction <= 1 and 0 <= self.cut_fraction <= 1 and 0 < self.max_overlap <= 1):
            raise ValueError("fractions must lie in [0, 1]")


@dataclass(frozen=True)
class SyntheticImage:
    """One rendered scene: BGR image and one annotation per labelled person (drawing order)."""

    image: np.ndarray
    people: tuple[PersonAnnotation, ...]


def figure_extent(person: Person) -> np.ndarray:
    """(x0, y0, x1, y1) box around a figure's keypoints, widened by its head and limb thickness."""
    sk = person.skeleton
    pts = np.concatenate([sk.keypoints, np.stack([sk.points[k] for k in ("left_toe", "right_toe", "head")])])
    xy = project(pts, person.placement, person.pose.roll)
    pad = 0.08 * person.placement.height
    return np.array([xy[:, 0].min() - pad, xy[:, 1].min() - pad, xy[:, 0].max() + pad, xy[:, 1].max() + pad])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _sample_height(rng: np.random.Generator, config: SceneConfig, image_height: int) -> float:
    largest = max(config.max_height_fraction * image_height, 2 * config.min_height + 1)
    if rng.random() < config.small_fraction:
        return float(rng.uniform(config.min_height, 2 * config.min_height))
    return float(np.exp(rng.uniform(np.log(2 * config.min_height), np.log(largest))))


def sample_people(rng: np.random.Generator, config: SceneConfig, width: int, height: int) -> list[Person]:
    """Figures for one still scene, in drawing order (farther, i.e. higher feet, first)."""
    people: list[Person] = []
    boxes: list[np.ndarray] = []
    for _ in range(int(rng.integers(1, config.max_people + 1))):
        for _attempt in range(15):
            unplaced = Person(random_pose(rng), Proportions.random(rng), Appearance.random(rng),
                              Placement(0.0, 0.0, _sample_height(rng, config, height)))
            box = figure_extent(unplaced)
            bw, bh = box[2] - box[0], box[3] - box[1]
            slack = 0.4 if rng.random() < config.cut_fraction else 0.0
            x0 = rng.uniform(-slack * bw, max(width - bw * (1 - slack), -slack * bw + 1))
            y0 = rng.uniform(-slack * bh, max(height - bh * (1 - slack), -slack * bh + 1))
            dx, dy = x0 - box[0], y0 - box[1]
            box = box + (dx, dy, dx, dy)
            if all(_iou(box, other) <= config.max_overlap for other in boxes):
                people.append(Person(unplaced.pose, unplaced.body, unplaced.look, Placement(dx, dy, unplaced.placement.height)))
                boxes.append(box)
                break
    order = np.argsort([b[3] for b in boxes], kind="stable")
    return [people[i] for i in order]


def annotate(people: list[Person], owner: np.ndarray) -> tuple[PersonAnnotation, ...]:
    """COCO annotations of drawn people; people with no labelled keypoint or no visible pixel are left out."""
    keypoints = visibility(people, owner)
    annotations = []
    for i in range(len(people)):
        mask = owner == i + 1
        area = int(mask.sum())
        if area == 0 or not (keypoints[i, :, 2] > 0).any():
            continue
        ys, xs = np.nonzero(mask)
        bbox = (float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1))
        annotations.append(PersonAnnotation(keypoints=keypoints[i], bbox=bbox, area=float(area), mask=mask))
    return tuple(annotations)


def synthetic_image(seed: int, index: int, config: SceneConfig = SceneConfig()) -> SyntheticImage:
    """Image `index` of the world with `seed` (deterministic)."""
    rng = np.random.default_rng([seed, index])
    width, height = config.sizes[int(rng.integers(len(config.sizes)))]
    image = random_background(rng, width, height)
    people = sample_people(rng, config, width, height)
    owner = draw_people(image, people)
    image = add_sensor_noise(rng, image, rng.uniform(0, config.max_noise))
    return SyntheticImage(image=image, people=annotate(people, owner))


