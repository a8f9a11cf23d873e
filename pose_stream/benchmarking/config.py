"""What one `pose-stream bench` run measures."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pose_stream.benchmarking.backends import BackendSpec
from pose_stream.errors import PoseStreamError
from pose_stream.input_size import InputSize

DECODE_INPUTS = ("auto", "network", "synthetic")


@dataclass(frozen=True)
class BenchConfig:
    """A grid of configurations, each timed after `warmup` untimed frames.

    Attributes:
        backends: engines to time.
        input_sizes: network input sizes (height, width), multiples of 32 (pose_stream.input_size); generated
            frames are drawn at exactly that size, which the estimator runs as an exact HxW input.
            A generated clip is drawn at exactly that size; a video's frames are resized to it.
        batches: frames per engine call (engine-only and batched end-to-end).
        flips: flip test off/on.
        people: figures per generated frame (ignored, and None, for a video).
        frames: timed frames per configuration; baseline_frames for the (slow) baseline.
        decode_input: "network" decodes the network's own outputs; "synthetic" decodes outputs rendered from the
            known people (a decoding load that follows `people` even with random weights); "auto" picks network
            when trained weights are given, synthetic otherwise.
        model, weights, onnx, engine: the network (random weights, seeded, when `weights` is None).
        video: a video file instead of a generated clip.
        baseline: also time the reference-style baseline.
        device: "auto", "cpu" or "cuda".
        threads: CPU threads for torch and Numba (0: their defaults); ONNX Runtime keeps its default (PoseEstimator
            has no thread option, and engine-only must time the engine end-to-end runs use).
    """

    backends: tuple[BackendSpec, ...]
    input_sizes: tuple[tuple[int, int], ...] = ((512, 960),)
    batches: tuple[int, ...] = (1,)
    flips: tuple[bool, ...] = (True,)
    people: tuple[int, ...] | None = (10,)
    frames: int = 200
    warmup: int = 5
    baseline_frames: int = 20
    decode_input: str = "auto"
    model: str = "w32_512"
    weights: str | None = None
    onnx: str | None = None
    engine: str | None = None
    triton: Any = None  # engine.registry.TritonOptions for the triton backend
    video: str | None = None
    baseline: bool = True
    device: str = "auto"
    threads: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.backends:
            raise PoseStreamError("no backend to benchmark")
        if self.frames < 1:
            raise PoseStreamError(f"--frames must be at least 1, got {self.frames}")
        if self.baseline_frames < 1:
            raise PoseStreamError(f"--baseline-frames must be at least 1, got {self.baseline_frames}")
        if self.warmup < 0:
            raise PoseStreamError(f"--warmup must be 0 or more, got {self.warmup}")
        if not self.batches or any(b < 1 for b in self.batches):
            raise PoseStreamError(f"batch sizes must be at least 1, got {list(self.batches)}")
        for h, w in self.input_sizes:
            InputSize(exact=(h, w))  # raises PoseStreamError naming a bad side
        if self.video is None:
            if not self.people:
                raise PoseStreamError("--people needs at least one count")
            if any(n < 0 for n in self.people):
                raise PoseStreamError(f"--people must be 0 or more, got {list(self.people)}")
        elif self.people is not None:
            raise PoseStreamError("--people applies to generated clips only, not to --video")
        if self.decode_input not in DECODE_INPUTS:
            raise PoseStreamError(f"--decode-input must be one of {', '.join(DECODE_INPUTS)}")
        if self.video is not None and self.decode_input == "synthetic":
            raise PoseStreamError("--decode-input synthetic needs a generated clip (known people), not --video")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise PoseStreamError(f"--device must be auto, cpu or cuda[:N], got {self.device!r}")
        if self.threads < 0:
            raise PoseStreamError(f"--threads must be 0 or more, got {self.threads}")

    @property
    def resolved_decode_input(self) -> str:
        if self.decode_input != "auto":
            return self.decode_input
        trained = self.weights or self.onnx or self.engine or self.video
        return "network" if trained else "synthetic"

    @property
    def people_counts(self) -> tuple[int | None, ...]:
        return (None,) if self.people is None else self.people
