"""Raw HigherHRNet outputs -> people in image pixels: aggregation, grouping, mapping back to the image.

`decode` is the one-call API; `Decoder` keeps its buffers between frames and splits the work into the two
pipeline stages `aggregate` and `group`.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numba
import numpy as np

from pose_stream.errors import PoseStreamError
from pose_stream.joints import JointSet, get_joint_set
from pose_stream.decoding.group_numba import NumbaGrouper, candidate_neighbours
from pose_stream.decoding.grouping_types import Grouped, GroupingParams, RefineRequest
from pose_stream.decoding.types import Candidates, RefinePeaks, ScaleOutputs
from pose_stream.poses import Poses
from pose_stream.decoding.preprocess import Transform, make_transform

log = logging.getLogger(__name__)

NMS_KERNEL = 5


@dataclass(frozen=True)
class Aggregated:
    """Candidates and what grouping needs besides them.

    Attributes:
        candidates: top-M candidates per joint, in network-input pixels of the scale-1 input.
        neighbours: float32 (K, M, 4) heatmap values around each candidate (x+1, x-1, y+1, y-1).
        transform: the scale-1 resize of the image.
        refine_search: the refine search over this frame's maps (the aggregation's, CPU or GPU).
        grouped: people already grouped (the CUDA path groups at once: its refine reads the latest maps).
        heatmaps: the aggregation's heatmap buffer, recycled once grouped.
    """

    candidates: Candidates
    neighbours: np.ndarray
    transform: Transform
    refine_search: Callable[[RefineRequest], RefinePeaks] | None = None
    grouped: Grouped | None = None
    heatmaps: np.ndarray | None = None


def check_outputs(outputs: Sequence[np.ndarray], num_joints: int, network_size: tuple[int, int], name: str) -> None:
    """Raise PoseStreamError unless outputs are [out0 (1, 2K, H/4, W/4), out1 (1, K, H/2, W/2)]."""
    w, h = network_size
    if len(outputs) != 2:
        raise PoseStreamError(f"{name} must be the two network outputs [out0, out1], got {len(outputs)} arrays")
    expected = ((2 * num_joints, h // 4, w // 4), (num_joints, h // 2, w // 2))
    for i, (array, want) in enumerate(zip(outputs, expected)):
        shape = tuple(array.shape) if hasattr(array, "shape") else tuple(np.shape(array))
        if len(shape) == 4 and shape[0] == 1:
            shape = shape[1:]
        if shape != want:
            raise PoseStreamError(
                f"{name}[{i}] has shape {shape}, expected (1, {want[0]}, {want[1]}, {want[2]}) for a "
                f"{w}x{h} network input and {num_joints} joints"
            )


class Decoder:
    """Aggregation (Numba, CPU) and grouping for one stream of frames of one joint set.

    The heatmap buffer is recycled: `group` hands it back for the next `aggregate`, so a stream allocates it
    once (an Aggregated is used up by `group`; one never grouped keeps its own).
    Not for concurrent use of one stage from several threads; `aggregate` and `group` may run in two threads.

    Args:
        joint_set: "coco", "crowdpose" or a JointSet.
        params: grouping settings.
        threads: Numba threads for one frame's kernels (set for the calling thread only, restored after; at
            most NUMBA_NUM_THREADS). 1 by default: a pipeline already overlaps its stages, and on a machine
            whose cores are busy (inference, other work) OpenMP's spin-waiting made two threads slower than
            one (docs/architecture.md, Decode speed).
    """

    def __init__(self, joint_set: JointSet | str = "coco", params: GroupingParams = GroupingParams(),
                 threads: int = 1) -> None:
        if threads < 1:
            raise PoseStreamError(f"threads must be at least 1, got {threads}")
        self.joint_set = get_joint_set(joint_set) if isinstance(joint_set, str) else joint_set
        self.params = params
        self.threads = threads
        self.grouper = NumbaGrouper(self.joint_set.visit_order, params)
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def check(self, scales: Sequence[ScaleOutputs], transform: Transform) -> bool:
        """Validate the outputs against the joint set and the transform; True under flip test."""
        if not scales:
            raise PoseStreamError("decoding needs the outputs of at least one scale")
        flip = scales[0].flipped is not None
        k = self.joint_set.num_joints
        for scale in scales:
            if (scale.flipped is not None) != flip:
                raise PoseStreamError("either every scale or no scale has flipped outputs")
            if scale.factor == 1.0:  # the scale whose input size the transform describes
                check_outputs(scale.outputs, k, transform.network_size, "outputs")
                if scale.flipped is not None:
                    check_outputs(scale.flipped, k, transform.network_size, "flipped outputs")
        return flip

    def aggregate(self, scales: Sequence[ScaleOutputs], transform: Transform) -> Aggregated:
        """Network outputs of all scales -> candidates (the Numba aggregation, on the host)."""
        from pose_stream.decoding.aggregate_numba import aggregate_numba

        flip = self.check(scales, transform)
        w, h = transform.network_size
        with numba_threads(self.threads):
            result = aggregate_numba(
                scales, self.joint_set.flip_index if flip else None, (h, w), self.params.max_people,
                NMS_KERNEL, heatmaps_out=self._take_buffer((self.joint_set.num_joints, h, w)),
            )
        cands = result.candidates
        neighbours = getattr(cands, "neighbours", None)
        if neighbours is None:
            neighbours = candidate_neighbours(result.heatmaps, cands)
        # refine over the aggregation's own data, for the joints matching leaves unassigned
        return Aggregated(cands, neighbours, transform,
                          refine_search=lambda request: result.refine(request.mean_tags, request.pending),
                          heatmaps=result.heatmaps)

    def group(self, aggregated: Aggregated) -> Poses:
        """Candidates -> Poses in image pixels."""
        grouped = aggregated.grouped
        if grouped is None:
            with numba_threads(self.threads):
                grouped = self.grouper.group(aggregated.candidates, neighbours=aggregated.neighbours,
                                             refine_search=aggregated.refine_search,
                                             size=aggregated.transform.network_size)
        if aggregated.heatmaps is not None:
            with self._lock:
                self._free.append(aggregated.heatmaps)
        return to_poses(grouped.keypoints, grouped.scores, aggregated.transform, self.joint_set)

    def decode(self, scales: Sequence[ScaleOutputs], transform: Transform) -> Poses:
        return self.group(self.aggregate(scales, transform))

    def _take_buffer(self, shape: tuple[int, int, int]) -> np.ndarray | None:
        with self._lock:
            while self._free:
                buffer = self._free.pop()
                if buffer.shape == shape:
                    return buffer
        return None  # the aggregation allocates a new one


@contextlib.contextmanager
def numba_threads(count: int) -> Iterator[None]:
    """Numba's thread count for the parallel kernels this thread calls (numba.set_num_threads is per calling
    thread), at most the NUMBA_NUM_THREADS it started with; restored on exit."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def refine_search_from(refine_peaks: Callable[[np.ndarray], RefinePeaks]) -> Callable[[RefineRequest], RefinePeaks]:
    """A refine search from a `refine(mean_tags)` that searches all joints of the people it is given (the
    CUDA aggregator's): ask only for the people missing a joint, and place their rows back."""

    def search(request: RefineRequest) -> RefinePeaks:
        n, k = request.pending.shape
        needed = np.flatnonzero(request.pending.any(axis=1))
        x = np.zeros((n, k), np.int32)
        y = np.zeros((n, k), np.int32)
        value = np.zeros((n, k), np.float32)
        neighbours = np.zeros((n, k, 4), np.float32)
        if needed.size:
            peaks = refine_peaks(np.ascontiguousarray(request.mean_tags[needed]))
            x[needed], y[needed], value[needed], neighbours[needed] = peaks.x, peaks.y, peaks.value, peaks.neighbours
        return RefinePeaks(x, y, value, neighbours)

    return search


def to_poses(keypoints: np.ndarray, scores: np.ndarray, transform: Transform, joint_set: JointSet) -> Poses:
    """Keypoints (N, K, 3) in network-input pixels -> Poses in image pixels (values unchanged)."""
    out = keypoints.copy()
    out[..., :2] = transform.to_image(keypoints[..., :2])
    return Poses(out, scores, joint_set.name)


def decode(
    outputs: Sequence[np.ndarray],
    flipped_outputs: Sequence[np.ndarray] | None = None,
    *,
    image_size: tuple[int, int],
    input_size: int = 512,
    dataset: str = "coco",
) -> Poses:
    """Decode the raw network outputs of one image into people, as the reference test pipeline does.

    Args:
        outputs: [out0 (1, 2K, H/4, W/4), out1 (1, K, H/2, W/2)] for the network input `preprocess` made
            from an image of image_size=(width, height) with this input_size.
        flipped_outputs: the network's outputs on the horizontally flipped input (not flipped back), or None.
        dataset: the joint set, "coco" (K=17) or "crowdpose" (K=14).
    """
    joint_set = get_joint_set(dataset)
    transform = make_transform(image_size, input_size)
    # The sizes are checked against the image before the outputs are taken in, for an error that names both.
    check_outputs(outputs, joint_set.num_joints, transform.network_size, "outputs")
    if flipped_outputs is not None:
        check_outputs(flipped_outputs, joint_set.num_joints, transform.network_size, "flipped outputs")
    flipped = tuple(flipped_outputs) if flipped_outputs is not None else None
    return Decoder(joint_set).decode([ScaleOutputs(tuple(outputs), flipped)], transform)
