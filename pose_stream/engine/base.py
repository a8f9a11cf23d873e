"""The backend interface every inference engine implements (PyTorch, ONNX Runtime, TensorRT).

Shapes: N batch, K joints, H x W network input.
infer(batch float32 (N, 3, H, W)) -> [out0 float32 (N, 2K, H/4, W/4), out1 float32 (N, K, H/2, W/2)].
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from pose_stream.errors import PoseStreamError
from pose_stream.input_size import MULTIPLE


@dataclass(frozen=True)
class BackendInfo:
    """What a backend runs on, printed at start-up and recorded with benchmark figures."""

    name: str          # "torch", "onnxruntime", "tensorrt"
    device: str        # "cpu", "cuda:0 (NVIDIA H100 ...)"
    precision: str     # "fp32" or "fp16"
    detail: str = ""   # e.g. the ONNX Runtime execution providers

    def __str__(self) -> str:
        extra = f", {self.detail}" if self.detail else ""
        return f"{self.name} on {self.device} ({self.precision}{extra})"


@dataclass(frozen=True)
class DeviceTensor:
    """A contiguous tensor in GPU memory; `pointer` is its device address (CUdeviceptr) as an int."""

    name: str
    pointer: int
    shape: tuple[int, ...]
    dtype: np.dtype
    owner: Any = None  # what keeps the memory alive (a torch tensor), if the tensor does not own it

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    def row(self, index: int) -> "DeviceTensor":
        """Batch row `index` as a tensor of batch 1 in the same memory (no copy)."""
        if not 0 <= index < self.shape[0]:
            raise IndexError(f"row {index} of a batch of {self.shape[0]}")
        row_bytes = self.nbytes // self.shape[0]
        return DeviceTensor(self.name, self.pointer + index * row_bytes, (1, *self.shape[1:]), self.dtype,
                            self.owner)


@dataclass(frozen=True)
class DeviceOutputs:
    """[out0, out1] left on the GPU by a backend's `infer_device` (TensorRT, torch on CUDA).

    They are written by work queued on `stream` (a pycuda Stream, or a raw stream handle): queue the consumer
    on the same stream (for TensorRT inside `context.active()`). They stay valid until the backend's next infer
    call or close.
    """

    tensors: tuple[DeviceTensor, ...]
    stream: Any
    context: Any = None  # the CudaContext they live in; None: the device's primary context, current already

    @property
    def stream_handle(self) -> int:
        return int(getattr(self.stream, "handle", self.stream))

    def __getitem__(self, index: int) -> DeviceTensor:
        return self.tensors[index]

    def __len__(self) -> int:
        return len(self.tensors)


class InputShapeError(PoseStreamError, ValueError):
    """A batch the backend's model cannot take (its fixed batch, height or width differ)."""


class Backend(abc.ABC):
    """A loaded network: `infer` maps a preprocessed batch to the two raw HigherHRNet outputs.

    Use as a context manager, or call `close()`; a closed backend cannot infer. All calls must come
    from the thread that created the backend when it owns GPU state.
    """

    info: BackendInfo
    num_joints: int

    @property
    @abc.abstractmethod
    def input_shape(self) -> tuple[int | None, int, int | None, int | None]:
        """(N, 3, H, W) the backend accepts; None marks a dynamic dimension."""

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def batch_range(self) -> tuple[int, int | None]:
        """The smallest and largest batch one call takes (None: no limit). A fixed batch size is (n, n)."""
        fixed = self.input_shape[0]
        return (1, None) if fixed is None else (fixed, fixed)

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run the network on `batch` (N, 3, H, W) float32; return [out0, out1] as float32 host arrays."""

    def close(self) -> None:
        """Release what the backend holds; idempotent."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def check_input(self, batch: np.ndarray) -> np.ndarray:
        """Validate a batch against input_shape; return it as contiguous float32."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a batch of shape (N, 3, H, W), got {batch.shape}")
        if batch.shape[2] % MULTIPLE or batch.shape[3] % MULTIPLE:
            raise ValueError(f"input height and width must be multiples of {MULTIPLE}, got {batch.shape[2:]}")
        for got, want, label in zip(batch.shape, self.input_shape, "NCHW"):
            if want is not None and got != want:
                fixed = "x".join("any" if d is None else str(d) for d in self.input_shape)
                hint = ("give --input-size HxW of the model's size, or export it with --dynamic" if label in "HW"
                        else "export it again (pose-stream export makes the batch dynamic)")
                raise InputShapeError(f"the {self.info.name} model takes inputs of {fixed} (N, 3, H, W), got "
                                      f"{label}={got} (shape {'x'.join(map(str, batch.shape))}): {hint}")
        return np.ascontiguousarray(batch, dtype=np.float32)
