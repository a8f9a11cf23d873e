"""What travels through the pipeline: frames, per-frame work in flight, and results."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pose_stream.pipeline.sources.base import CapturedImage
from pose_stream.poses import Poses


@dataclass(frozen=True)
class Frame:
    """One image with where and when it came from.

    Attributes:
        source_id: the source's display name (credentials masked).
        source_index: position of the source in the pipeline's source list.
        seq: number of this frame among those the source handed to the pipeline (0, 1, 2, ...).
        index: position in the source (frame number of a video or stream, counting dropped frames; image
            number in a folder).
        image: uint8 BGR (H, W, 3).
        captured_at: time.monotonic() when read; end-to-end latency is measured from here.
        wall_time: time.time() when read.
        name: file name for image sources, else "".
    """

    source_id: str
    source_index: int
    seq: int
    index: int
    image: np.ndarray
    captured_at: float
    wall_time: float
    name: str = ""

    @classmethod
    def of(cls, captured: CapturedImage, source_id: str, source_index: int, seq: int) -> "Frame":
        return cls(source_id, source_index, seq, captured.index, captured.image, captured.captured_at,
                   captured.wall_time, captured.name)


@dataclass
class Work:
    """A frame in flight between stages, with the latest stage output and the seconds each stage took."""

    frame: Frame
    payload: Any = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class FrameResult:
    """A finished frame, as sinks receive it.

    Attributes:
        frame: the input frame (its image is drawn on in place when rendering is on).
        poses: the people found.
        timings: seconds per stage (prepare, infer, aggregate, group).
        latency: seconds from capture to poses ready.
        source_state: the source's state when the result was ready ("streaming", "stalled", ...).
        done_wall_time: time.time() when the poses were ready.
        annotated: the frame with skeletons and overlay, when a sink needs it; else None.
    """

    frame: Frame
    poses: Poses
    timings: dict[str, float]
    latency: float
    source_state: str
    done_wall_time: float
    annotated: np.ndarray | None = None
