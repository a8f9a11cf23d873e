"""Input shape ranges of a TensorRT engine (optimization profiles) and how to derive them from an ONNX model.

Pure Python: no TensorRT needed, so the shape logic is tested everywhere.
Shapes are (N, 3, H, W) with H and W multiples of 32, as the network requires.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pose_stream.errors import PoseStreamError
from pose_stream.input_size import MULTIPLE

Shape = tuple[int, int, int, int]
# A dimension read from an ONNX model: an int, or None where the model leaves it dynamic.
OnnxDims = tuple[int | None, int | None, int | None, int | None]


def _as_shape(value, label: str) -> Shape:
    shape = tuple(int(v) for v in value)
    if len(shape) != 4 or any(v <= 0 for v in shape):
        raise ValueError(f"ShapeProfile.{label} must be 4 positive ints (N, 3, H, W), got {value!r}")
    if shape[1] != 3:
        raise ValueError(f"ShapeProfile.{label} must have 3 channels, got {shape}")
    if shape[2] % MULTIPLE or shape[3] % MULTIPLE:
        raise ValueError(f"ShapeProfile.{label}: height and width must be multiples of {MULTIPLE}, got {shape}")
    return shape  # type: ignore[return-value]


@dataclass(frozen=True)
class ShapeProfile:
    """One optimization profile: the engine accepts every input shape between `min` and `max`
    (element-wise) and is tuned for `opt`. Each shape is (N, 3, H, W)."""

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        for label in ("min", "opt", "max"):
            object.__setattr__(self, label, _as_shape(getattr(self, label), label))
        if not all(a <= b <= c for a, b, c in zip(self.min, self.opt, self.max)):
            raise ValueError(f"ShapeProfile needs min <= opt <= max in every dimension, got {self.describe()}")

    @classmethod
    def fixed(cls, shape) -> "ShapeProfile":
        return cls(shape, shape, shape)

    @classmethod
    def for_size(cls, height: int, width: int, batch: tuple[int, int] = (1, 1)) -> "ShapeProfile":
        """Fixed H x W, batch from batch[0] to batch[1]; tuned for the largest batch, which the
        pipeline fills when it batches frames (or a frame with its flipped copy)."""
        lo, hi = batch
        return cls((lo, 3, height, width), (hi, 3, height, width), (hi, 3, height, width))

    def contains(self, shape) -> bool:
        shape = tuple(shape)
        return len(shape) == 4 and all(a <= s <= b for a, s, b in zip(self.min, shape, self.max))

    def describe(self) -> str:
        """'1..8x3x512x960': a range where min and max differ, the value where they agree."""
        return "x".join(str(a) if a == b else f"{a}..{b}" for a, b in zip(self.min, self.max))

    def to_json(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_json(cls, data: dict) -> "ShapeProfile":
        return cls(tuple(data["min"]), tuple(data["opt"]), tuple(data["max"]))


def parse_batch_range(text: str) -> tuple[int, int]:
    """'1-8' -> (1, 8); '4' -> (4, 4)."""
    try:
        parts = [int(p) for p in text.split("-")]
    except ValueError:
        raise PoseStreamError(f"bad batch range {text!r}: expected N or MIN-MAX such as 1-8") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or parts[0] < 1 or parts[0] > parts[1]:
        raise PoseStreamError(f"bad batch range {text!r}: expected 1 <= MIN <= MAX, such as 1-8")
    return parts[0], parts[1]


def onnx_input_spec(onnx_path: str | os.PathLike) -> tuple[str, OnnxDims]:
    """Name and (N, C, H, W) of the model's single input, None for dynamic dimensions."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends for files that are not ONNX
        raise PoseStreamError(f"cannot read ONNX model {onnx_path}: {type(exc).__name__}: {exc}") from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise PoseStreamError(f"{onnx_path}: expected one network input, found {len(inputs)}")
    dims = [d.dim_value if d.dim_value > 0 else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise PoseStreamError(f"{onnx_path}: expected an (N, 3, H, W) input, found {len(dims)} dimensions")
    return inputs[0].name, tuple(dims)  # type: ignore[return-value]


def profiles_for(
    input_dims: OnnxDims,
    sizes: list[tuple[int, int]] | None = None,
    batch: tuple[int, int] | None = None,
    source: str | Path = "the ONNX model",
) -> tuple[ShapeProfile, ...]:
    """One profile per requested input size (H, W), each over the batch range.

    Without sizes the model's own static H x W is used; without a batch range its static batch, or 1.
    A size or batch that contradicts a static dimension of the model is an error, since the engine
    could never run it.
    """
    n, _, h, w = input_dims
    if batch is None:
        batch = (n, n) if n is not None else (1, 1)
    elif n is not None and batch != (n, n):
        raise PoseStreamError(
            f"{source} has a fixed batch of {n}; export it again (pose-stream export makes the batch dynamic) to "
            f"build for batch {batch[0]}-{batch[1]}"
        )
    if not sizes:
        if h is None or w is None:
            raise PoseStreamError(
                f"{source} has a dynamic height/width: give the input size (e.g. --input-size 512x960)"
            )
        sizes = [(h, w)]
    profiles: list[ShapeProfile] = []
    for size in sizes:
        if (h is not None and size[0] != h) or (w is not None and size[1] != w):
            raise PoseStreamError(
                f"{source} has a fixed input of {h}x{w}; it cannot be built for {size[0]}x{size[1]} "
                "(export with --dynamic, or at that size)"
            )
        try:
            profile = ShapeProfile.for_size(size[0], size[1], batch)
        except ValueError as exc:
            raise PoseStreamError(str(exc)) from None
        if profile not in profiles:
            profiles.append(profile)
    return tuple(profiles)
