"""Multi-resolution heatmap aggregation, candidates and refine peaks on the GPU (kernels in aggregate.cu).

The network's outputs stay on the device: `CudaAggregator.aggregate` takes device pointers and returns only
the candidates (about 18 KB for K = 17: x, y, value, adjust neighbours, tags); `refine` takes the persons'
mean tags and returns (N, K) peaks. Results equal the NumPy reference (`aggregate_ref`) bit for bit, since
the kernels perform the reference's float32 operations in its order with explicit rounding intrinsics.

CUDA context: the aggregator owns none. Create it, call it and close it in a thread where the caller has made
a context current (for pycuda: `ctx.push()`; the pipeline's GPU thread does this); its module, buffers and
pinned host memory belong to that context. `stream` is the caller's stream (a `pycuda.driver.Stream`, or None
for the default stream; with the CuPy driver a `cupy.cuda.Stream` or a raw handle): kernels and copies are
queued on it behind the network's work, and `aggregate`/`refine` synchronise it once their few bytes are back.

The same .cu can be driven through CuPy's RawModule (`driver="cupy"`), which the GPU tests use as a
cross-check where pycuda is not installed.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pose_stream.errors import PoseStreamError
from pose_stream.decoding.aggregate_ref import (
    axis_weights,
    check_base_hw,
    check_flip_index,
    check_mean_tags,
    check_nms,
    scale_order,
)
from pose_stream.decoding.cuda_drivers import COMPILE_OPTIONS, DRIVERS, compile_kernels, kernel_source
from pose_stream.decoding.types import Candidates, RefinePeaks

_DRIVERS = DRIVERS  # the same dict: tests register emulated drivers in it
__all__ = ["COMPILE_OPTIONS", "CudaAggregator", "ScalePointers", "ScaleShape", "compile_kernels", "kernel_source"]

logger = logging.getLogger(__name__)

MAX_PEOPLE = 32  # candidates per joint: one warp's list
MAX_NMS_KERNEL = 9  # 2 * MAX_PAD + 1 in aggregate.cu
_NMS_TILE = 32
_REFINE_THREADS, _REFINE_PIXELS, _REFINE_PERSONS = 256, 8, 32


# --------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ScaleShape:
    """Output shapes of one test scale: out0 is (2K, *quarter_hw), out1 (K, *half_hw); factor 1.0 = base."""

    quarter_hw: tuple[int, int]
    half_hw: tuple[int, int]
    factor: float = 1.0

    def __post_init__(self) -> None:
        if len(self.quarter_hw) != 2 or len(self.half_hw) != 2 or min(*self.quarter_hw, *self.half_hw) < 1:
            raise PoseStreamError(f"scale shapes must be positive (h, w) pairs, got {self.quarter_hw}, {self.half_hw}")


@dataclass(frozen=True)
class ScalePointers:
    """Device pointers to one scale's float32 C-contiguous network outputs (batch of 1): out0 (2K, h/4, w/4),
    out1 (K, h/2, w/2), and the pair of the flipped input's pass (not flipped back) or None."""

    out0: int
    out1: int
    flipped_out0: int | None = None
    flipped_out1: int | None = None


def _packed_table(n_in: int, n_out: int) -> np.ndarray:
    """The resize table of aggregate.cu: int32 [i0 | i1 | bits(l0) | bits(l1)]."""
    w = axis_weights(n_in, n_out)
    return np.concatenate([w.i0, w.i1, w.l0.view(np.int32), w.l1.view(np.int32)]).astype(np.int32)


def _ptr(value: int | None) -> np.uint64:
    return np.uint64(0 if value is None else value)


def _grid(n: int, per_block: int) -> int:
    return max(1, -(-n // per_block))


# ------------------------------------------------------------------------------------------ aggregator


class CudaAggregator:
    """Aggregation, candidates and refine peaks on the GPU, for fixed shapes (allocate once, reuse per frame).

    Args:
        num_joints: K.
        base_hw: (H, W), the scale-1 network-input size where the aggregated maps live.
        scales: output shapes per test scale, in the order `aggregate` will receive their pointers.
        flip_index: the joint set's flip index with flip test, None without.
        max_people: candidates per joint (<= 32).
        nms_kernel: odd NMS window (<= 9).
        driver: "pycuda" (the product) or "cupy" (the same kernels through CuPy, for cross-checks).

    Not thread-safe; one frame at a time: `refine` reads the maps of the latest `aggregate`.
    """

    def __init__(
        self,
        num_joints: int,
        base_hw: tuple[int, int],
        scales: Sequence[ScaleShape],
        flip_index: Sequence[int] | None = None,
        max_people: int = 30,
        nms_kernel: int = 5,
        driver: str = "pycuda",
    ) -> None:
        if num_joints < 1:
            raise PoseStreamError(f"num_joints must be positive, got {num_joints}")
        self.num_joints = k = int(num_joints)
        self.base_hw = h, w = check_base_hw(base_hw)
        check_nms(h, w, max_people, nms_kernel)
        if max_people > MAX_PEOPLE or nms_kernel > MAX_NMS_KERNEL:
            raise PoseStreamError(
                f"the CUDA aggregation supports max_people <= {MAX_PEOPLE} and nms_kernel <= {MAX_NMS_KERNEL}, "
                f"got {max_people} and {nms_kernel}"
            )
        if driver not in _DRIVERS:
            raise PoseStreamError(f"unknown CUDA driver {driver!r}; choose one of {sorted(_DRIVERS)}")
        self.scales = tuple(scales)
        self._order, self._tag_position = scale_order([s.factor for s in self.scales])
        self.with_flip = flip_index is not None
        flip = check_flip_index(flip_index, k) if self.with_flip else None
        self.tag_dim = 2 if self.with_flip else 1
        self.max_people = int(max_people)
        self.nms_kernel = int(nms_kernel)
        self._tiles = _grid(w, _NMS_TILE) * _grid(h, _NMS_TILE)
        self._driver = _DRIVERS[driver](kernel_source())
        self._buffers: list[int] = []
        self._pinned_arrays: list[np.ndarray] = []
        self._refine_capacity = 0
        self._closed = False
        try:
            self._allocate(flip)
        except BaseException:
            self.close()
            raise
        logger.debug("CUDA aggregator: K=%d base %dx%d, %d scale(s), flip=%s", k, h, w, len(self.scales), self.with_flip)

    # -------------------------------------------------------------------------------------- buffers

    def _device(self, nbytes: int) -> int:
        ptr = self._driver.alloc(nbytes)
        self._buffers.append(ptr)
        return ptr

    def _upload(self, array: np.ndarray) -> int:
        array = np.ascontiguousarray(array)
        ptr = self._device(array.nbytes)
        self._driver.to_device(ptr, array, None)
        return ptr

    def _host(self, nbytes: int) -> np.ndarray:
        array = self._driver.pinned(nbytes)
        self._pinned_arrays.append(array)
        return array

    def _allocate(self, flip: np.ndarray | None) -> None:
        k, (h, w), f4 = self.num_joints, self.base_hw, 4
        self._tables = []
        for scale in self.scales:
            (h4, w4), (h2, w2) = scale.quarter_hw, scale.half_hw
            self._tables.append(
                tuple(
                    self._upload(_packed_table(n_in, n_out))
                    for n_in, n_out in ((h4, h2), (w4, w2), (h2, h), (w2, w))
                )
            )
        self._identity = self._upload(np.arange(k, dtype=np.int32))
        self._flip = self._upload(flip.astype(np.int32)) if flip is not None else 0
        largest_half = max(s.half_hw[0] * s.half_hw[1] for s in self.scales)
        self._heat_plain = self._device(k * largest_half * f4)
        self._heat_flip = self._device(k * largest_half * f4) if self.with_flip else 0
        tag_half = self.scales[self._order[self._tag_position]].half_hw
        self._tag_hw = tag_half
        self._tag_plain = self._device(k * tag_half[0] * tag_half[1] * f4)
        self._tag_flip = self._device(k * tag_half[0] * tag_half[1] * f4) if self.with_flip else 0
        self._heat = self._device(k * h * w * f4)
        self._block_keys = self._device(k * self._tiles * 32 * 8)
        words = k * self.max_people * (3 + 4 + self.tag_dim)
        self._candidates = self._device(words * 4)
        self._candidates_host = self._host(words * 4)
        self._driver.synchronize(None)  # the table uploads read pageable host arrays

    def _ensure_refine_capacity(self, n: int) -> None:
        if n <= self._refine_capacity:
            return
        capacity = max(n, 2 * self._refine_capacity, 32)
        for name in ("_means", "_refine_keys", "_refine_out"):
            if getattr(self, name, None):
                self._buffers.remove(getattr(self, name))
                self._driver.free(getattr(self, name))
        for name in ("_means_host", "_refine_host"):
            if getattr(self, name, None) is not None:
                self._release_pinned(getattr(self, name))
        k = self.num_joints
        self._means = self._device(capacity * self.tag_dim * 4)
        self._refine_keys = self._device(capacity * k * 8)
        self._refine_out = self._device(capacity * k * 7 * 4)
        self._means_host = self._host(capacity * self.tag_dim * 4)
        self._refine_host = self._host(capacity * k * 7 * 4)
        self._refine_capacity = capacity

    def _release_pinned(self, array: np.ndarray) -> None:
        for i, held in enumerate(self._pinned_arrays):
            if held is array:
                del self._pinned_arrays[i]
                break
        self._driver.free_pinned(array)

    # ------------------------------------------------------------------------------------------ API

    def aggregate(self, outputs: Sequence[ScalePointers], stream: Any = None) -> Candidates:
        """Queues aggregation, NMS and top-k on `stream` for the outputs of every scale (device pointers, in the
        order of `scales`), waits for the candidates and returns them. The maps stay on the device for refine."""
        self._check_open()
        self._check_outputs(outputs)
        projection = self._queue_heatmaps(outputs, stream)
        k, (h, w) = self.num_joints, self.base_hw
        i32 = np.int32
        self._driver.launch(
            "nms_block_topk", (_grid(w, _NMS_TILE), _grid(h, _NMS_TILE), k), (_NMS_TILE, _NMS_TILE, 1),
            (_ptr(self._heat), *(_ptr(p) for p in projection[:4]), _ptr(self._block_keys),
             i32(k), i32(h), i32(w), i32(projection[4]), i32(projection[5]), i32(self.nms_kernel // 2)),
            stream,
        )
        m = self.max_people
        _, _, t_rows, t_cols = self._tables[self._order[self._tag_position]]
        sizes = [k * m, k * m, k * m, k * m * 4, k * m * self.tag_dim]  # x, y, value, neighbours, tags
        offsets = [4 * int(o) for o in np.cumsum([0, *sizes])]
        self._driver.launch(
            "merge_candidates", (k, 1, 1), (1024, 1, 1),
            (_ptr(self._block_keys), _ptr(self._heat), _ptr(self._tag_plain), _ptr(self._tag_flip),
             _ptr(t_rows), _ptr(t_cols), *(_ptr(self._candidates + o) for o in offsets[:5]),
             i32(k), i32(self._tiles), i32(m), i32(h), i32(w), i32(self._tag_hw[0]), i32(self._tag_hw[1])),
            stream,
        )
        self._driver.to_host(self._candidates_host, self._candidates, stream)
        self._driver.synchronize(stream)
        words, floats = self._candidates_host.view(np.int32), self._candidates_host.view(np.float32)
        x, y, value, neighbours, tags = (slice(a // 4, b // 4) for a, b in zip(offsets[:-1], offsets[1:]))
        return Candidates(
            x=words[x].reshape(k, m).copy(),
            y=words[y].reshape(k, m).copy(),
            value=floats[value].reshape(k, m).copy(),
            tags=floats[tags].reshape(k, m, self.tag_dim).copy(),
            neighbours=floats[neighbours].reshape(k, m, 4).copy(),
        )

    def _check_outputs(self, outputs: Sequence[ScalePointers]) -> None:
        if len(outputs) != len(self.scales):
            raise PoseStreamError(f"expected outputs of {len(self.scales)} scale(s), got {len(outputs)}")
        for scale_outputs in outputs:
            given = (scale_outputs.flipped_out0 is not None, scale_outputs.flipped_out1 is not None)
            if given != (self.with_flip, self.with_flip):
                raise PoseStreamError(
                    "flipped outputs must be given exactly when the aggregator was built with a flip index"
                )

    def _queue_heatmaps(self, outputs: Sequence[ScalePointers], stream: Any) -> tuple:
        """Queues the half-resolution passes of every scale (reference order) and, with several scales, their
        projection into the aggregated heatmaps. Returns what nms_block_topk needs to project a single scale
        itself: (heat_plain, heat_flip, rows, cols, h2, w2), or zeros when the heatmaps are already there."""
        k, (h, w) = self.num_joints, self.base_hw
        i32 = np.int32
        last = len(self._order) - 1
        for position, index in enumerate(self._order):
            scale, ptrs = self.scales[index], outputs[index]
            (h4, w4), (h2, w2) = scale.quarter_hw, scale.half_hw
            q_rows, q_cols, h_rows, h_cols = self._tables[index]
            with_tags = position == self._tag_position
            passes = [(ptrs.out0, ptrs.out1, self._identity, self._heat_plain, self._tag_plain, 0)]
            if self.with_flip:
                passes.append((ptrs.flipped_out0, ptrs.flipped_out1, self._flip, self._heat_flip, self._tag_flip, 1))
            for out0, out1, channels, heat, tags, mirrored in passes:
                self._driver.launch(
                    "half_res_pass", (_grid(w2, 128), h2, k), (128, 1, 1),
                    (_ptr(out0), _ptr(out1), _ptr(q_rows), _ptr(q_cols), _ptr(channels), _ptr(heat),
                     _ptr(tags if with_tags else 0), i32(k), i32(h4), i32(w4), i32(h2), i32(w2), i32(mirrored)),
                    stream,
                )
            if last == 0:
                return self._heat_plain, self._heat_flip, h_rows, h_cols, h2, w2
            divisor = np.float32(len(self._order) if position == last else 0)
            self._driver.launch(
                "project_heat", (_grid(w, 128), h, k), (128, 1, 1),
                (_ptr(self._heat_plain), _ptr(self._heat_flip), _ptr(h_rows), _ptr(h_cols), _ptr(self._heat),
                 i32(k), i32(h2), i32(w2), i32(h), i32(w), i32(position > 0), divisor),
                stream,
            )
        return 0, 0, 0, 0, 0, 0

    def refine(self, mean_tags: np.ndarray, stream: Any = None) -> RefinePeaks:
        """Refine peaks of the latest aggregated maps for persons with mean tags (N, L) (see
        aggregate_ref.refine_peaks): only (N, K) results come back."""
        self._check_open()
        mean_tags = check_mean_tags(mean_tags, self.tag_dim)
        n, k, (h, w) = len(mean_tags), self.num_joints, self.base_hw
        if n == 0:
            empty = np.zeros((0, k), np.int32)
            return RefinePeaks(x=empty, y=empty.copy(), value=np.zeros((0, k), np.float32),
                               neighbours=np.zeros((0, k, 4), np.float32))
        self._ensure_refine_capacity(n)
        i32 = np.int32
        staged = self._means_host[: mean_tags.nbytes]
        staged.view(np.float32)[:] = mean_tags.ravel()
        self._driver.to_device(self._means, staged, stream)
        self._driver.launch(
            "fill_u64", (_grid(n * k, 256), 1, 1), (256, 1, 1),
            (_ptr(self._refine_keys), np.uint64(0), i32(n * k)), stream,
        )
        _, _, t_rows, t_cols = self._tables[self._order[self._tag_position]]
        self._driver.launch(
            "refine_argmax",
            (_grid(h * w, _REFINE_THREADS * _REFINE_PIXELS), k, _grid(n, _REFINE_PERSONS)), (_REFINE_THREADS, 1, 1),
            (_ptr(self._heat), _ptr(self._tag_plain), _ptr(self._tag_flip), _ptr(t_rows), _ptr(t_cols),
             _ptr(self._means), _ptr(self._refine_keys), i32(k), i32(h), i32(w), i32(self._tag_hw[0]),
             i32(self._tag_hw[1]), i32(n)),
            stream,
        )
        nk = n * k
        out = self._refine_out
        self._driver.launch(
            "refine_finish", (_grid(nk, 128), 1, 1), (128, 1, 1),
            (_ptr(self._refine_keys), _ptr(self._heat), _ptr(out), _ptr(out + 4 * nk), _ptr(out + 8 * nk),
             _ptr(out + 12 * nk), i32(k), i32(h), i32(w), i32(n)),
            stream,
        )
        host = self._refine_host[: nk * 7 * 4]
        self._driver.to_host(host, out, stream)
        self._driver.synchronize(stream)
        words, floats = host.view(np.int32), host.view(np.float32)
        return RefinePeaks(
            x=words[:nk].reshape(n, k).copy(),
            y=words[nk:2 * nk].reshape(n, k).copy(),
            value=floats[2 * nk:3 * nk].reshape(n, k).copy(),
            neighbours=floats[3 * nk:7 * nk].reshape(n, k, 4).copy(),
        )

    def heatmaps(self, stream: Any = None) -> np.ndarray:
        """The latest aggregated heatmaps (K, H, W), copied to the host (tests and debugging; 33 MB at 512x960)."""
        self._check_open()
        k, (h, w) = self.num_joints, self.base_hw
        host = np.empty((k, h, w), np.float32)
        self._driver.synchronize(stream)
        self._driver.to_host(host, self._heat, None)
        self._driver.synchronize(None)
        return host

    def _check_open(self) -> None:
        if self._closed:
            raise PoseStreamError("the CUDA aggregator is closed")

    def close(self) -> None:
        """Frees every device and pinned buffer (with the creating context current). Idempotent."""
        if self._closed:
            return
        self._closed = True
        while self._buffers:
            self._driver.free(self._buffers.pop())
        while self._pinned_arrays:
            self._driver.free_pinned(self._pinned_arrays.pop())
        self._driver.close()

    def __enter__(self) -> CudaAggregator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
