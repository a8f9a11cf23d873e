"""Data passed between aggregation and grouping. Shape glossary:

K joints, M candidates per joint (top-k, 30), L tag dimensions (1, 2 with flip, 2 x scales),
H x W the network-input resolution (where aggregated maps live), N people.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pose_stream.errors import PoseStreamError


@dataclass(frozen=True)
class Candidates:
    """Top-M NMS peaks per joint of the aggregated heatmaps, in network-input pixels.

    Attributes:
        x: int32 (K, M) column of each peak.
        y: int32 (K, M) row of each peak.
        value: float32 (K, M) aggregated heatmap value, descending along M (ties keep index order).
        tags: float32 (K, M, L) tag vector at the peak.
        neighbours: float32 (K, M, 4) or None: the aggregated heatmap at [x+1, x-1, y+1, y-1] of each peak
            (indices clamped to the map), what the quarter-pixel adjust compares; lets grouping adjust without
            the full maps (the CUDA path never copies them to the host).
    """

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    tags: np.ndarray
    neighbours: np.ndarray | None = None

    @property
    def num_joints(self) -> int:
        return int(self.value.shape[0])

    @property
    def tag_dim(self) -> int:
        return int(self.tags.shape[2])


@dataclass(frozen=True)
class AggregatedMaps:
    """Aggregated full-resolution maps (what refine and adjust read).

    Attributes:
        heatmaps: float32 (K, H, W), mean over plain/flipped passes and scales.
        tags: float32 (K, H, W, L), tag maps stacked along the last axis.
    """

    heatmaps: np.ndarray
    tags: np.ndarray


@dataclass(frozen=True)
class RefinePeaks:
    """Per person and joint, the refine peak: argmax over the map of heatmap - round(||tag - person mean tag||).

    The argmax is the first maximum in row-major order. `neighbours` holds the heatmap at the four pixels the
    quarter-pixel adjust compares, with indices clamped to the map: [x+1, x-1, y+1, y-1] as
    hm[y, min(x+1, W-1)], hm[y, max(x-1, 0)], hm[min(y+1, H-1), x], hm[max(y-1, 0), x].
    A search may cover only some (person, joint) pairs (grouping asks for the unassigned joints); the
    others are zeros. Every refine path fills one: `aggregate_ref.refine_peaks` (the reference),
    `refine_numba.refine_search` (CPU), `aggregate_cuda.CudaAggregator.refine` (GPU, all joints).

    Attributes:
        x: int32 (N, K) column of the peak.
        y: int32 (N, K) row of the peak.
        value: float32 (N, K) heatmap value at the peak (not the tag-penalised score).
        neighbours: float32 (N, K, 4) heatmap at [x+1, x-1, y+1, y-1] (clamped).
    """

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    neighbours: np.ndarray


@dataclass(frozen=True)
class ScaleOutputs:
    """The raw network outputs of one test scale: the one type for them, on the host or on the GPU.

    For a network input of h x w at this scale and K joints:

    Attributes:
        outputs: (out0 (2K, h/4, w/4): K heatmaps then K tag maps, out1 (K, h/2, w/2)) of the plain pass.
            Host arrays (a leading batch of 1 is accepted) are stored float32, C-contiguous, without the batch
            axis. Device tensors (objects with a `pointer`, such as engine.tensorrt_backend.DeviceTensor, of
            batch 1) are kept as they are, for the CUDA aggregation to read in place.
        flipped: the same pair from the pass on the horizontally flipped input, as the network returns it (not
            flipped back), or None without flip test.
        factor: this scale's factor; 1.0 is the base scale. With several scales only the factor-1 tags are
            kept, as in the reference.
    """

    outputs: tuple[Any, Any]
    flipped: tuple[Any, Any] | None = None
    factor: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", _checked_pair(self.outputs, "outputs"))
        if self.flipped is not None:
            flipped = _checked_pair(self.flipped, "flipped")
            if any(f.shape != o.shape for f, o in zip(flipped, self.outputs)):
                raise PoseStreamError(
                    f"flipped outputs {[f.shape for f in flipped]} differ in shape from the plain outputs "
                    f"{[o.shape for o in self.outputs]}"
                )
            object.__setattr__(self, "flipped", flipped)
        if not (np.isfinite(self.factor) and self.factor > 0):
            raise PoseStreamError(f"scale factor must be positive, got {self.factor}")

    @property
    def on_device(self) -> bool:
        return is_device_tensor(self.outputs[0])

    @property
    def num_joints(self) -> int:
        return int(self.outputs[1].shape[-3])

    @property
    def quarter_hw(self) -> tuple[int, int]:
        return int(self.outputs[0].shape[-2]), int(self.outputs[0].shape[-1])

    @property
    def half_hw(self) -> tuple[int, int]:
        return int(self.outputs[1].shape[-2]), int(self.outputs[1].shape[-1])


def is_device_tensor(entry: Any) -> bool:
    """True for GPU-resident outputs (they carry a device `pointer`), False for host arrays."""
    return not isinstance(entry, np.ndarray) and hasattr(entry, "pointer")


def _checked_pair(pair: Sequence[Any], name: str) -> tuple[Any, Any]:
    if len(pair) != 2:
        raise PoseStreamError(f"{name} must be [out0, out1], got {len(pair)} arrays")
    arrays = []
    for i, array in enumerate(pair):
        device = is_device_tensor(array)
        if not device:
            array = np.asarray(array)
        shape = tuple(array.shape)
        if device and (len(shape) != 4 or shape[0] != 1):
            raise PoseStreamError(f"{name}[{i}] on the GPU must be (1, C, h, w), got shape {shape}")
        if not device and array.ndim == 4 and shape[0] == 1:
            array, shape = array[0], shape[1:]
        if not device and array.ndim != 3:
            raise PoseStreamError(f"{name}[{i}] must be (C, h, w) or (1, C, h, w), got shape {shape}")
        arrays.append(array if device else np.ascontiguousarray(array, dtype=np.float32))
    out0, out1 = (tuple(a.shape[-3:]) for a in arrays)
    if out0[0] != 2 * out1[0]:
        raise PoseStreamError(f"{name}: out0 must have 2K channels for out1's K = {out1[0]}, got {out0[0]}")
    if min(out0[1:]) < 1 or min(out1[1:]) < 1:
        raise PoseStreamError(f"{name}: empty maps {out0}, {out1}")
    return arrays[0], arrays[1]
