"""Drawing poses and a status overlay on frames, in the joint set's skeleton and colours."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pose_stream.joints import JointSet, get_joint_set
from pose_stream.poses import Poses

MIN_JOINT_VALUE = 0.1  # joints below this heatmap value are not drawn (nor limbs touching them)
# The reference keeps every fragment (one-joint people that refine completes, with tiny scores); drawing
# them buries the real people under stray limbs. `pose-stream run` leaves them out of every output
# (--min-score); the library's Pipeline keeps them unless its config says otherwise.
MIN_PERSON_SCORE = 0.15


def drawn_people(poses: Poses, min_score: float = MIN_PERSON_SCORE) -> np.ndarray:
    """Indices of the people worth drawing: person score >= min_score."""
    return np.flatnonzero(poses.scores >= min_score)


def draw_poses(image: np.ndarray, poses: Poses, joint_set: JointSet | None = None,
               min_value: float = MIN_JOINT_VALUE, min_score: float = MIN_PERSON_SCORE) -> np.ndarray:
    """Draw the limbs and joints of every person scoring >= min_score on `image` (uint8 BGR, in place), with
    their track id above them when people are tracked."""
    joints = joint_set or get_joint_set(poses.joint_set)
    height, width = image.shape[:2]
    thickness = max(1, round(min(height, width) / 240))
    radius = thickness + 1
    drawn = drawn_people(poses, min_score)
    for n, person in zip(drawn, poses.keypoints[drawn]):
        visible = person[:, 2] >= min_value
        if poses.track_ids is not None and poses.track_ids[n] >= 0 and visible.any():
            _label(image, f"#{int(poses.track_ids[n])}", person[visible, :2], thickness)
        points = np.round(person[:, :2]).astype(np.int64)
        for limb, (a, b) in enumerate(joints.skeleton):
            if visible[a] and visible[b]:
                cv2.line(image, tuple(map(int, points[a])), tuple(map(int, points[b])), joints.limb_color(limb),
                         thickness, cv2.LINE_AA)
        for j in np.flatnonzero(visible):
            cv2.circle(image, tuple(map(int, points[j])), radius, joints.joint_color(int(j)), -1, cv2.LINE_AA)
    return image


def _label(image: np.ndarray, text: str, points: np.ndarray, thickness: int) -> None:
    """`text` centred above the topmost of `points`."""
    scale = 0.35 * thickness + 0.15
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    top = points[np.argmin(points[:, 1])]
    origin = (int(top[0] - w / 2), int(max(h + 2, top[1] - 4 * thickness - 2)))
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def draw_overlay(image: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Write status lines (FPS, latency, source state) in the top-left corner, legible on any background."""
    scale = max(0.4, image.shape[0] / 900)
    step = int(28 * scale) + 4
    for i, text in enumerate(lines):
        origin = (8, step * (i + 1))
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def gui_available() -> bool:
    """True when this OpenCV build can open windows (the headless wheel cannot)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() != "NONE"
    return False
