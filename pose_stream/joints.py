"""Joint sets (COCO, CrowdPose): names, flip order, skeleton and colours. The one source of truth.

Every other module (flip test, grouping order, drawing, COCO evaluation, training targets) reads
the joint layout from here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JointSet:
    """A dataset's keypoint layout.

    Attributes:
        name: "coco" or "crowdpose".
        names: K joint names, in network channel order.
        flip_index: length K; channel j of a horizontally flipped image holds joint flip_index[j].
        visit_order: length K; the order the associative-embedding grouping visits joints.
        skeleton: pairs (a, b) of joint indices joined by a limb when drawing.
        sigmas: length K per-joint OKS falloff used by COCO-style evaluation.
    """

    name: str
    names: tuple[str, ...]
    flip_index: tuple[int, ...]
    visit_order: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]

    def __post_init__(self) -> None:
        k = len(self.names)
        for field_name in ("flip_index", "visit_order", "sigmas"):
            if len(getattr(self, field_name)) != k:
                raise ValueError(f"{self.name}: {field_name} must have {k} entries")
        if sorted(self.flip_index) != list(range(k)) or sorted(self.visit_order) != list(range(k)):
            raise ValueError(f"{self.name}: flip_index and visit_order must be permutations of 0..{k - 1}")
        if any(not (0 <= a < k and 0 <= b < k) for a, b in self.skeleton):
            raise ValueError(f"{self.name}: skeleton joint index out of range")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def limb_color(self, limb: int) -> tuple[int, int, int]:
        """BGR colour of a limb: left side warm, right side cool, centre green."""
        a, b = self.skeleton[limb]
        side = _side(self.names[a]) or _side(self.names[b])
        return {"left": (0, 165, 255), "right": (255, 128, 0)}.get(side, (0, 220, 0))

    def joint_color(self, joint: int) -> tuple[int, int, int]:
        side = _side(self.names[joint])
        return {"left": (0, 100, 255), "right": (255, 60, 0)}.get(side, (0, 255, 0))


def _side(name: str) -> str:
    for side in ("left", "right"):
        if name.startswith(side):
            return side
    return ""


COCO = JointSet(
    name="coco",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    visit_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
        (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
)

CROWDPOSE = JointSet(
    name="crowdpose",
    names=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "head", "neck",
    ),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    # The reference grouping indexes the COCO visit order with i < 14, which gives this permutation.
    visit_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13),
    skeleton=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (13, 6), (13, 7),
        (6, 7), (6, 8), (8, 10), (7, 9), (9, 11),
    ),
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
)

JOINT_SETS: dict[str, JointSet] = {"coco": COCO, "crowdpose": CROWDPOSE}


def get_joint_set(name: str) -> JointSet:
    try:
        return JOINT_SETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown joint set {name!r}; choose one of {sorted(JOINT_SETS)}") from None
