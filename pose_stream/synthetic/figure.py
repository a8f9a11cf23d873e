"""An articulated humanoid: joint angles -> 3D skeleton -> the 17 COCO keypoints in the image.

Body frame (units of figure height, origin at the mid-hip point): x = the person's left, y = down,
z = the direction the person faces. `yaw` turns the body about the vertical axis (0 = facing the
camera, +pi/2 = facing image right) and the projection is orthographic, so the person's left appears
on the image right when they face the camera, as in a photograph.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# COCO keypoint order (pose_stream.joints.COCO.names), spelled out for the geometry below.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
NUM_KEYPOINTS = 17
FACE_KEYPOINTS = (NOSE, L_EYE, R_EYE, L_EAR, R_EAR)


@dataclass(frozen=True)
class Proportions:
    """Segment lengths and widths in units of the figure height (head top to sole is about 1)."""

    hip_half_width: float = 0.085
    shoulder_half_width: float = 0.125
    shoulder_height: float = 0.30
    head_height: float = 0.43
    head_radius: float = 0.065
    upper_arm: float = 0.165
    forearm: float = 0.15
    thigh: float = 0.235
    shin: float = 0.235
    foot: float = 0.07
    torso_half_depth: float = 0.05

    def __post_init__(self) -> None:
        if any(v <= 0 for v in vars(self).values()):
            raise ValueError("body proportions must be positive")

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Proportions":
        """Build variation: broad or slim shoulders, long or short limbs (about +-10 %)."""
        base = cls()
        jitter = lambda v, s=0.08: float(v * rng.uniform(1 - s, 1 + s))  # noqa: E731
        return cls(**{k: jitter(v) for k, v in vars(base).items()})


@dataclass(frozen=True)
class LimbAngles:
    """One arm or leg, in radians. flex swings the limb forward, abduct lifts it sideways, bend is
    the elbow/knee angle, twist turns the plane of that bend about the upper segment."""

    flex: float = 0.0
    abduct: float = 0.0
    bend: float = 0.0
    twist: float = 0.0


@dataclass(frozen=True)
class PoseAngles:
    """Everything that moves. yaw turns the whole body, roll tilts it in the image plane, stoop bends
    the upper body forward, head_yaw/head_pitch turn the head relative to the body."""

    yaw: float = 0.0
    roll: float = 0.0
    stoop: float = 0.0
    head_yaw: float = 0.0
    head_pitch: float = 0.0
    left_arm: LimbAngles = field(default_factory=LimbAngles)
    right_arm: LimbAngles = field(default_factory=LimbAngles)
    left_leg: LimbAngles = field(default_factory=LimbAngles)
    right_leg: LimbAngles = field(default_factory=LimbAngles)


@dataclass(frozen=True)
class Skeleton3D:
    """Body points after yaw, in figure units: x right, y down, z towards the camera.

    Attributes:
        keypoints: (17, 3) COCO keypoints.
        face_visible: (17,) bool, False for a face keypoint on the far side of the head.
        points: named helper points for drawing (neck, head centre, hands, toes, torso corners).
        limb_dirs: unit directions of the forearms (for hands) and of the head's forward axis.
    """

    keypoints: np.ndarray
    face_visible: np.ndarray
    points: dict[str, np.ndarray]


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    """Turn about the vertical axis so that forward (+z) goes to +x for a = +pi/2."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # np.cross is ~20x slower than this for single 3-vectors, and figures need thousands per second.
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _rotate_about(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation of v about `axis` by `angle`."""
    axis = axis / np.sqrt(axis @ axis)
    return v * np.cos(angle) + _cross(axis, v) * np.sin(angle) + axis * (axis @ v) * (1 - np.cos(angle))


def _limb(root: np.ndarray, side: float, angles: LimbAngles, upper: float, lower: float,
          bend_sign: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Middle joint, end joint and lower-segment direction of a limb hanging from `root`.

    side is +1 for the left limb (outward = +x), -1 for the right. bend_sign +1 bends the lower
    segment forward (elbow), -1 backward (knee).
    """
    frame = _rot_x(angles.flex) @ _rot_z(-side * angles.abduct)
    upper_dir = frame @ np.array([0.0, 1.0, 0.0])
    outward = frame @ np.array([side, 0.0, 0.0])
    bend_axis = _rotate_about(outward, upper_dir, angles.twist)
    # About the outward axis a positive angle swings a downward vector forward (+z) on the left
    # and backward on the right; `side` makes "forward" the same for both.
    lower_dir = _rotate_about(upper_dir, bend_axis, bend_sign * side * angles.bend)
    middle = root + upper * upper_dir
    return middle, middle + lower * lower_dir, lower_dir


def skeleton_3d(pose: PoseAngles, body: Proportions) -> Skeleton3D:
    """Pose the figure: joint angles -> 3D keypoints and drawing points (see Skeleton3D)."""
    b = body
    kp = np.zeros((NUM_KEYPOINTS, 3))
    kp[L_HIP] = (b.hip_half_width, 0, 0)
    kp[R_HIP] = (-b.hip_half_width, 0, 0)
    upper_body = _rot_x(-pose.stoop)  # stoop > 0 leans the chest forward (towards +z)
    kp[L_SHOULDER] = upper_body @ (b.shoulder_half_width, -b.shoulder_height, 0)
    kp[R_SHOULDER] = upper_body @ (-b.shoulder_half_width, -b.shoulder_height, 0)
    neck = upper_body @ np.array([0.0, -b.shoulder_height - 0.02, 0.0])
    head_centre = upper_body @ np.array([0.0, -b.head_height, 0.0])

    head = upper_body @ _rot_y(pose.head_yaw) @ _rot_x(-pose.head_pitch)
    r = b.head_radius
    face_local = {
        NOSE: (0.0, 0.15 * r, 1.0 * r),
        L_EYE: (0.38 * r, -0.2 * r, 0.85 * r),
        R_EYE: (-0.38 * r, -0.2 * r, 0.85 * r),
        L_EAR: (0.97 * r, 0.05 * r, -0.1 * r),
        R_EAR: (-0.97 * r, 0.05 * r, -0.1 * r),
    }
    for j, offset in face_local.items():
        kp[j] = head_centre + head @ np.array(offset)

    points: dict[str, np.ndarray] = {"neck": neck, "head": head_centre, "pelvis": np.zeros(3),
                                     "head_forward": head @ np.array([0.0, 0.0, 1.0])}
    for side, name, arm, shoulder, elbow, wrist in (
        (1.0, "left", pose.left_arm, L_SHOULDER, L_ELBOW, L_WRIST),
        (-1.0, "right", pose.right_arm, R_SHOULDER, R_ELBOW, R_WRIST),
    ):
        kp[elbow], kp[wrist], forearm_dir = _limb(kp[shoulder], side, arm, b.upper_arm, b.forearm, +1.0)
        points[f"{name}_hand"] = kp[wrist] + 0.035 * forearm_dir
    for side, name, leg, hip, knee, ankle in (
        (1.0, "left", pose.left_leg, L_HIP, L_KNEE, L_ANKLE),
        (-1.0, "right", pose.right_leg, R_HIP, R_KNEE, R_ANKLE),
    ):
        kp[knee], kp[ankle], _ = _limb(kp[hip], side, leg, b.thigh, b.shin, -1.0)
        points[f"{name}_toe"] = kp[ankle] + b.foot * np.array([0.0, 0.3, 1.0]) / np.hypot(0.3, 1.0)

    d = b.torso_half_depth
    corners = [kp[j] + upper_body @ np.array([0, 0, dz]) if j in (L_SHOULDER, R_SHOULDER) else kp[j] + (0, 0, dz)
               for j in (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP) for dz in (-d, d)]
    points["torso_corners"] = np.array(corners)

    turn = _rot_y(pose.yaw)
    kp = kp @ turn.T
    points = {k: v @ turn.T for k, v in points.items()}
    # A face point is seen when its outward normal (from the head centre) points at the camera.
    normals = kp[list(FACE_KEYPOINTS)] - points["head"]
    face_visible = np.ones(NUM_KEYPOINTS, dtype=bool)
    face_visible[list(FACE_KEYPOINTS)] = normals[:, 2] / np.linalg.norm(normals, axis=1) > -0.2
    return Skeleton3D(keypoints=kp, face_visible=face_visible, points=points)


@dataclass(frozen=True)
class Placement:
    """Where a figure stands in the image: mid-hip pixel (x, y) and its height in pixels."""

    x: float
    y: float
    height: float

    def __post_init__(self) -> None:
        if self.height <= 0:
            raise ValueError("figure height must be positive")


def project(points: np.ndarray, placement: Placement, roll: float) -> np.ndarray:
    """(..., 3) figure points -> (..., 2) image pixels (orthographic, rolled about the mid-hip)."""
    c, s = np.cos(roll), np.sin(roll)
    xy = points[..., :2] * placement.height
    x = c * xy[..., 0] - s * xy[..., 1] + placement.x
    y = s * xy[..., 0] + c * xy[..., 1] + placement.y
    return np.stack([x, y], axis=-1)
