"""Test doubles for the pipeline: a fast deterministic stage estimator, a collecting sink, media makers."""
from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from pose_stream.pipeline.sinks import Sink
from pose_stream.poses import Poses


class FakeEstimator:
    """Implements the pipeline's StageEstimator quickly and checkably.

    - Records the digest of every image in the order `infer` saw them.
    - "Creates its backend" in the thread of the first `infer` and raises if `infer` or `close` come from
      another thread (the rule a CUDA backend imposes).
    - Returns one person per frame whose keypoints are a function of the image (so outputs can be checked).
    - `delays` (seconds per stage) make it slow; `fail_at=(stage, n)` raises in that stage on the n-th call.
      The delay "infer_torch" is spent in torch's native code (matrix products on all its threads), as a real
      network pass is: the case where the interpreter must not exit under a running call.
    """

    def __init__(self, delays: dict[str, float] | None = None, fail_at: tuple[str, int] | None = None,
                 fail_with: type[BaseException] = RuntimeError) -> None:
        self.delays = delays or {}
        self.fail_at = fail_at
        self.fail_with = fail_with
        self.digests: list[str] = []
        self.calls = {"prepare": 0, "infer": 0, "aggregate": 0, "group": 0}
        self.backend_thread: int | None = None
        self.close_thread: int | None = None
        self.closed = False
        self.backend_info = "fake on cpu (fp32)"

    def _stage(self, name: str) -> None:
        self.calls[name] += 1
        if self.fail_at is not None and self.fail_at[0] == name and self.calls[name] == self.fail_at[1]:
            raise self.fail_with(f"injected failure in {name} at call {self.calls[name]}")
        if self.delays.get(name):
            time.sleep(self.delays[name])

    def prepare(self, image_bgr: np.ndarray) -> dict:
        self._stage("prepare")
        return {"digest": digest(image_bgr), "shape": image_bgr.shape, "mean": float(image_bgr.mean())}

    def infer(self, prepared: dict) -> dict:
        if self.backend_thread is None:
            self.backend_thread = threading.get_ident()
        elif self.backend_thread != threading.get_ident():
            raise RuntimeError("infer called from a thread that did not create the backend")
        if self.closed:
            raise RuntimeError("infer after close")
        self._stage("infer")
        if self.delays.get("infer_torch"):
            torch_busy(self.delays["infer_torch"])
        self.digests.append(prepared["digest"])
        return prepared

    def aggregate(self, raw: dict) -> dict:
        self._stage("aggregate")
        return raw

    def group(self, aggregated: dict) -> Poses:
        self._stage("group")
        return expected_poses(aggregated["shape"], aggregated["mean"])

    def close(self) -> None:
        if self.backend_thread is not None and self.backend_thread != threading.get_ident():
            raise RuntimeError("close called from a thread that did not create the backend")
        self.close_thread = threading.get_ident()
        self.closed = True


def torch_busy(seconds: float) -> None:
    """Keep torch's native code (and its intra-op threads) busy for about `seconds`."""
    import torch

    a = torch.rand(768, 768)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        a = torch.tanh(a @ a)


def digest(image: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=12).hexdigest()


def expected_poses(shape: tuple[int, ...], mean: float, num_joints: int = 17) -> Poses:
    """The one person FakeEstimator reports for an image of `shape` with mean pixel value `mean`."""
    height, width = shape[:2]
    j = np.arange(num_joints, dtype=np.float32)
    keypoints = np.stack([(mean + 7 * j) % width, (j + 1) * height / (num_joints + 2), np.full_like(j, 0.9)], axis=1)
    return Poses(keypoints[None], np.array([mean / 255.0], np.float32), "coco")


class CollectSink(Sink):
    """Keeps every result (without the image, to stay small) and optionally sleeps per frame."""

    def __init__(self, delay: float = 0.0, keep_images: bool = False) -> None:
        self.delay = delay
        self.keep_images = keep_images
        self.results: list = []
        self.started = self.closed = False
        self.arrivals: list[float] = []

    def start(self, context) -> None:
        self.started = True

    def write(self, result) -> None:
        self.arrivals.append(time.monotonic())
        self.results.append(result if self.keep_images else _without_image(result))
        if self.delay:
            time.sleep(self.delay)

    def close(self) -> None:
        self.closed = True


def _without_image(result):
    from dataclasses import replace

    return replace(result, frame=replace(result.frame, image=np.zeros((1, 1, 3), np.uint8)), annotated=None)


def make_frames(count: int, size: tuple[int, int] = (160, 120), seed: int = 0) -> list[np.ndarray]:
    """Distinct, smooth frames (they survive lossy compression recognisably)."""
    width, height = size
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), (i * 37) % 200 + 20, np.uint8)
        cv2.rectangle(frame, (int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))),
                      (int(rng.integers(40, width)), int(rng.integers(40, height))), (255, 255, 255), -1)
        cv2.putText(frame, str(i), (5, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
        frames.append(frame)
    return frames


def write_video(path: Path, count: int, fps: float = 20.0, size: tuple[int, int] = (160, 120)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for frame in make_frames(count, size):
        writer.write(frame)
    writer.release()
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of a video, decoded independently of the pipeline."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def pipeline_threads() -> list[threading.Thread]:
    from pose_stream.pipeline.pipeline import THREAD_PREFIX

    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]


class TinyTorchEstimator:
    """A real network behind the stage interface: tiny_w8 (random weights) on a TorchBackend created lazily in
    the thread of the first `infer`, with a toy decoder (strongest location per joint, one person).

    Stands in for PoseEstimator where the pipeline's threading with a real backend is what is tested.
    """

    INPUT = 128

    def __init__(self) -> None:
        from pose_stream.models import build_model

        self.model = build_model("tiny_w8")
        self.backend = None
        self.backend_thread: int | None = None
        self.close_thread: int | None = None

    @property
    def backend_info(self):
        return None if self.backend is None else self.backend.info

    def prepare(self, image_bgr: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        resized = cv2.resize(image_bgr, (self.INPUT, self.INPUT)).astype(np.float32) / 255.0
        return resized.transpose(2, 0, 1)[None].copy(), image_bgr.shape[:2]

    def infer(self, prepared):
        from pose_stream.engine import TorchBackend

        if self.backend is None:
            self.backend = TorchBackend(self.model, device="cpu")
            self.backend_thread = threading.get_ident()
        assert threading.get_ident() == self.backend_thread
        batch, size = prepared
        return self.backend.infer(batch), size

    def aggregate(self, raw):
        (out0, out1), size = raw
        return out1[0], size  # (K, H/2, W/2)

    def group(self, aggregated) -> Poses:
        heatmaps, (height, width) = aggregated
        k, h, w = heatmaps.shape
        flat = heatmaps.reshape(k, -1)
        best = flat.argmax(axis=1)
        keypoints = np.stack([(best % w + 0.5) * width / w, (best // w + 0.5) * height / h,
                              flat.max(axis=1)], axis=1).astype(np.float32)
        return Poses(keypoints[None], np.array([keypoints[:, 2].mean()], np.float32), "coco")

    def close(self) -> None:
        if self.backend is not None:
            assert threading.get_ident() == self.backend_thread
            self.backend.close()
        self.close_thread = threading.get_ident()
