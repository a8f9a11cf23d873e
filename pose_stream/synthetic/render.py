"""Drawing posed figures with OpenCV: capsules for limbs, a hull for the torso, discs for the head.

Every figure is drawn twice: in colour onto the image, and with its id onto an int32 owner map, so
that afterwards each pixel says which person is on top there (0 = background). The owner map gives
the visible area, the bounding box and the occlusion of every keypoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from pose_stream.synthetic.figure import (
    L_ANKLE, L_EAR, L_ELBOW, L_EYE, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, NOSE, R_ANKLE, R_EAR, R_ELBOW, R_EYE,
    R_HIP, R_KNEE, R_SHOULDER, R_WRIST, Placement, PoseAngles, Proportions, Skeleton3D, project, skeleton_3d,
)

Color = tuple[int, int, int]
_SHIFT = 3  # OpenCV fixed-point bits: sub-pixel accurate drawing
_ONE = 1 << _SHIFT

_SKIN_TONES: tuple[Color, ...] = (
    (189, 224, 255), (150, 200, 241), (120, 170, 224), (90, 140, 198), (60, 105, 160), (45, 75, 110),
)
_HAIR: tuple[Color, ...] = ((20, 20, 25), (30, 45, 70), (40, 80, 130), (90, 150, 200), (160, 160, 165))


@dataclass(frozen=True)
class Appearance:
    """Colours (BGR) of one figure."""

    skin: Color
    hair: Color
    shirt: Color
    pants: Color
    shoes: Color
    short_sleeves: bool

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Appearance":
        def jitter(c: Color, amount: int = 18) -> Color:
            return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)  # type: ignore

        return cls(
            skin=jitter(_SKIN_TONES[rng.integers(len(_SKIN_TONES))]),
            hair=jitter(_HAIR[rng.integers(len(_HAIR))]),
            shirt=_random_cloth(rng),
            pants=_random_cloth(rng),
            shoes=jitter((30, 30, 35), 25),
            short_sleeves=bool(rng.random() < 0.4),
        )


def _random_cloth(rng: np.random.Generator) -> Color:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(60, 256), rng.integers(70, 256)]]], dtype=np.uint8)
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])  # type: ignore[return-value]


@dataclass(frozen=True)
class Person:
    """A figure ready to draw: its pose, build, colours and place in the image."""

    pose: PoseAngles
    body: Proportions
    look: Appearance
    placement: Placement

    @cached_property
    def skeleton(self) -> Skeleton3D:
        return skeleton_3d(self.pose, self.body)

    @cached_property
    def keypoints_2d(self) -> np.ndarray:
        """(17, 2) image positions of the COCO keypoints (OpenCV convention: pixel centres at integers)."""
        return project(self.skeleton.keypoints, self.placement, self.pose.roll)


@dataclass(frozen=True)
class _Part:
    kind: str  # "capsule" (2 points), "hull" (n points) or "disc" (1 point)
    points: np.ndarray  # (n, 2) pixels
    radius: float  # pixels
    color: Color
    depth: float  # larger = nearer the camera; parts are drawn far to near
    outline: bool = True


def _shade(color: Color, factor: float) -> Color:
    return tuple(int(min(255, v * factor)) for v in color)  # type: ignore[return-value]


def _parts(person: Person) -> list[_Part]:
    sk = person.skeleton
    kp3, pts3 = sk.keypoints, sk.points
    look, h = person.look, person.placement.height

    def img(p3: np.ndarray) -> np.ndarray:
        return project(np.atleast_2d(p3), person.placement, person.pose.roll)

    parts: list[_Part] = []

    def segment(a: np.ndarray, b: np.ndarray, radius: float, color: Color, bias: float = 0.0) -> None:
        depth = float((a[2] + b[2]) / 2) + bias
        # The far side of the body is in shadow: it tells the network which limb is behind.
        shaded = _shade(color, 0.78) if depth < -0.03 else color
        parts.append(_Part("capsule", img(np.stack([a, b])), radius * h, shaded, depth))

    parts.append(_Part("hull", img(pts3["torso_corners"]), 0.0, look.shirt, 0.0))
    segment(kp3[L_SHOULDER], kp3[R_SHOULDER], 0.042, look.shirt, 0.001)
    segment(kp3[L_HIP], kp3[R_HIP], 0.06, look.pants, 0.002)
    segment(pts3["neck"], pts3["head"], 0.03, look.skin, -0.01)
    sleeve_end = {True: look.skin, False: look.shirt}[look.short_sleeves]
    for shoulder, elbow, wrist, hand in ((L_SHOULDER, L_ELBOW, L_WRIST, "left_hand"),
                                         (R_SHOULDER, R_ELBOW, R_WRIST, "right_hand")):
        segment(kp3[shoulder], kp3[elbow], 0.034, look.shirt, 0.003)
        segment(kp3[elbow], kp3[wrist], 0.028, sleeve_end, 0.004)
        segment(kp3[wrist], pts3[hand], 0.03, look.skin, 0.005)
    for hip, knee, ankle, toe in ((L_HIP, L_KNEE, L_ANKLE, "left_toe"), (R_HIP, R_KNEE, R_ANKLE, "right_toe")):
        segment(kp3[hip], kp3[knee], 0.047, look.pants, 0.001)
        segment(kp3[knee], kp3[ankle], 0.038, look.pants, 0.001)
        segment(kp3[ankle], pts3[toe], 0.026, look.shoes, 0.002)

    # The head goes on top of the torso unless a limb is clearly in front of the face.
    head_depth = float(pts3["head"][2]) + 0.06
    r = person.body.head_radius
    forward = pts3["head_forward"]
    parts.append(_Part("disc", img(pts3["head"] - 0.15 * r * forward + (0, -0.1 * r, 0)), r * h, look.hair,
                       head_depth))
    parts.append(_Part("disc", img(pts3["head"] + 0.12 * r * forward + (0, 0.08 * r, 0)), 0.9 * r * h, look.skin,
                       head_depth + 1e-4, outline=False))
    features = ((L_EAR, 0.25, _shade(look.skin, 0.8)), (R_EAR, 0.25, _shade(look.skin, 0.8)),
                (L_EYE, 0.16, (25, 20, 20)), (R_EYE, 0.16, (25, 20, 20)), (NOSE, 0.14, _shade(look.skin, 0.6)))
    for j, size, color in features:
        if sk.face_visible[j]:
            parts.append(_Part("disc", img(kp3[j]), size * r * h, color, head_depth + 2e-4, outline=False))
    return parts


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * _ONE).astype(np.int32)


def _draw(canvas: np.ndarray, part: _Part, color, grow: float, antialias: bool) -> None:
    line = cv2.LINE_AA if antialias else cv2.LINE_8
    p = _fixed(part.points)
    if part.kind == "hull":
        hull = cv2.convexHull(p)
        cv2.fillConvexPoly(canvas, hull, color, line, _SHIFT)
        if grow > 0:
            cv2.polylines(canvas, [hull], True, color, max(1, int(round(2 * grow))), line, _SHIFT)
    elif part.kind == "capsule":
        thickness = max(1, int(round(2 * (part.radius + grow))))
        cv2.line(canvas, tuple(p[0]), tuple(p[1]), color, thickness, line, _SHIFT)
    else:
        radius = int(round((part.radius + grow) * _ONE))
        cv2.circle(canvas, tuple(p[0]), max(radius, _ONE // 2), color, -1, line, _SHIFT)


def draw_people(image: np.ndarray, people: list[Person]) -> np.ndarray:
    """Draw `people` onto the BGR `image` in list order (later ones in front); return the owner map.

    owner: (H, W) int32, i + 1 where people[i] is the topmost figure at that pixel, 0 elsewhere.
    """
    owner = np.zeros(image.shape[:2], dtype=np.int32)
    for pid, person in enumerate(people, start=1):
        outline = max(1.0, 0.008 * person.placement.height)
        for part in sorted(_parts(person), key=lambda q: q.depth):
            if part.outline:
                _draw(image, part, _shade(part.color, 0.35), outline, antialias=True)
                _draw(owner, part, pid, outline, antialias=False)
            _draw(image, part, part.color, 0.0, antialias=True)
            _draw(owner, part, pid, 0.0, antialias=False)
    return owner


def visibility(people: list[Person], owner: np.ndarray) -> np.ndarray:
    """(P, 17, 3) keypoints with COCO visibility: 2 seen, 1 hidden behind another person, 0 unlabelled.

    A face keypoint on the far side of the head and any keypoint outside the image are unlabelled
    (x = y = 0), as in COCO.
    """
    height, width = owner.shape
    out = np.zeros((len(people), 17, 3), dtype=np.float32)
    for i, person in enumerate(people):
        xy = person.keypoints_2d
        face_ok = person.skeleton.face_visible
        px = np.round(xy).astype(int)
        inside = (px[:, 0] >= 0) & (px[:, 0] < width) & (px[:, 1] >= 0) & (px[:, 1] < height) & face_ok
        for j in np.flatnonzero(inside):
            out[i, j, :2] = xy[j]
            out[i, j, 2] = 2.0 if owner[px[j, 1], px[j, 0]] == i + 1 else 1.0
    return out
