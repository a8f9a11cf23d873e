"""Settings and data passed between the grouping stages. Shape glossary as in kernels/types.py:

K joints, M candidates per joint, L tag dimensions, H x W the network-input resolution, N people.

Grouping runs in stages so that the expensive refine search can run elsewhere (the CUDA refine kernel):
match -> adjust + score -> refine request -> refine search (CPU or GPU; a types.RefinePeaks) -> refine apply ->
image coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Order of the four neighbour values everywhere (kernels/types.RefinePeaks, the refine search's result):
# x+1, x-1, y+1, y-1, each index clamped to the map.
NEIGHBOURS = ("right", "left", "down", "up")

# Matching costs. A padding column (no person) costs PADDING_COST. With max_reach, a person out of reach costs
# OUT_OF_REACH_COST more, so the assignment prefers anyone within reach; it stays below PADDING_COST.
PADDING_COST = 1e10
OUT_OF_REACH_COST = 1e6


@dataclass(frozen=True)
class GroupingParams:
    """Associative-embedding grouping settings (defaults: the released COCO configs).

    Attributes:
        max_people: only the first max_people people (creation order) take part in matching; also the
            number of candidates per joint. People beyond it are still reported (no cap on the output).
        detection_threshold: candidates with value <= this are dropped.
        tag_threshold: a matched candidate joins a person only if the L2 tag distance is below this.
        use_detection_value: cost = round(distance) * 100 - value (else the raw distance).
        adjust: quarter-pixel offset towards the higher neighbour.
        refine: fill unassigned joints from the tag-aware argmax of each joint's map.
        max_reach: None (the reference) or a fraction of the network input's longer side: a candidate joins a
            person only if it lies within that distance of one of the person's joints so far, and is matched
            to people beyond it only when no one is nearer. Not in the reference: off for the released
            checkpoints; the demo model's card turns it on (docs/demo-model.md), because its tags alone let
            a joint join a person on the other side of the frame.
    """

    max_people: int = 30
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    use_detection_value: bool = True
    adjust: bool = True
    refine: bool = True
    max_reach: float | None = None

    def __post_init__(self) -> None:
        if self.max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {self.max_people}")
        if self.detection_threshold < 0:
            # Refine tells assigned joints by value > 0, as the reference does; that needs values above 0.
            raise ValueError(f"detection_threshold must be >= 0, got {self.detection_threshold}")
        if self.tag_threshold <= 0:
            raise ValueError(f"tag_threshold must be positive, got {self.tag_threshold}")
        if self.max_reach is not None and not 0 < self.max_reach <= 2:
            raise ValueError(f"max_reach must be in (0, 2] (a fraction of the input's longer side), got "
                             f"{self.max_reach}")

    def reach_squared(self, size: tuple[int, int] | None) -> float:
        """max_reach in squared network-input pixels for an input of size (either order of W and H); -1 when
        off. Distances between candidates are whole pixels, so comparing squares is exact."""
        if self.max_reach is None:
            return -1.0
        if size is None:
            raise ValueError("grouping with max_reach needs the network input's size")
        reach = self.max_reach * float(max(size))
        return reach * reach


@dataclass(frozen=True)
class Matching:
    """Result of matching: which candidate each person holds per joint.

    Attributes:
        joints: int32 (N, K): candidate index m into the joint's candidates, -1 where unassigned.
    """

    joints: np.ndarray

    @property
    def num_people(self) -> int:
        return int(self.joints.shape[0])


@dataclass(frozen=True)
class RefineRequest:
    """What the refine search needs per person (computed on the CPU from the candidates).

    Attributes:
        mean_tags: float32 (N, L): mean tag of each person's assigned joints (joint-index order).
        pending: bool (N, K): joints to search for (the unassigned ones).
    """

    mean_tags: np.ndarray
    pending: np.ndarray


@dataclass(frozen=True)
class Grouped:
    """People found by grouping, in network-input pixels (before mapping to the image).

    Attributes:
        keypoints: float32 (N, K, 3): x, y (pixel index + 0.5 +- 0.25) and value; zeros for missing joints.
        scores: float32 (N,): mean joint value after adjust, before refine.
        joints: int32 (N, K): the matched candidate per joint, -1 where matching left it unassigned.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    joints: np.ndarray

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])
