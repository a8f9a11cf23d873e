"""A stand-in network for the real PoseEstimator: it outputs what a perfect network would for known people.

Why a fake: the eval tests need a deterministic, perfect detector (AP exactly 1.0, and a known drop under a
known perturbation), and no network small enough to run in a test detects anything. Everything around the
network is real (PoseEstimator's prepare, aggregation, grouping, the eval command); only the torch backend is
replaced, so the estimator builds it as it builds TorchBackend (model, device, fp16).

Usage: `oracle_backend.install(monkeypatch)`, then `oracle_backend.register(image, people, input_size)` for each
image: when the estimator's network input is that image's (plain or mirrored), the oracle renders the people
with `kernels.synthetic`; any other input shows nobody. With fp16=True (the torch-fp16 backend) every joint is
moved by FP16_SHIFT of its person's height in a random direction (seeded), so that a backend comparison has a
difference to report: the shift is a fixed share of the person's size, as OKS tolerance is, so every person's OKS
falls below 0.95 and AP below 1.0 whatever their size (a 3-pixel normal jitter left AP at 1.0 in 4 of
150 seeded layouts).
"""
from __future__ import annotations

import hashlib

import numpy as np

from pose_stream.engine import BackendInfo
from pose_stream.engine.base import Backend
from pose_stream.joints import COCO
from pose_stream.synthetic.outputs import SyntheticPeople, render_flipped_outputs, render_outputs
from pose_stream.decoding.preprocess import preprocess

ORACLE: dict[str, SyntheticPeople] = {}  # digest of a plain network input (3, h, w) -> people in its pixels
FP16_SHIFT = 0.05  # of the person's height (FP16 AP 0.45-0.71 over 150 seeded layouts of make_figure_set)


def digest(network_input: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(network_input, np.float32).tobytes()).hexdigest()


def register(image_bgr: np.ndarray, people: SyntheticPeople, input_size: int) -> None:
    """Let the oracle know the people (image pixels) of an image the estimator will be given."""
    tensor, transform = preprocess(image_bgr, input_size)
    ORACLE[digest(tensor[0])] = people.with_keypoints(transform.to_network(people.keypoints))


class OracleBackend(Backend):
    """Renders registered people for the inputs it recognises (COCO joints); TorchBackend's signature."""

    def __init__(self, model=None, device: str = "auto", fp16: bool = False, cuda_graph: bool = False) -> None:
        self.num_joints = COCO.num_joints
        self.info = BackendInfo("torch", "cpu", "fp16" if fp16 else "fp32", "oracle")
        self._rng = np.random.default_rng(0) if fp16 else None

    @property
    def input_shape(self):
        return (None, 3, None, None)

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        rows0, rows1 = [], []
        for row in self.check_input(batch):
            out0, out1 = self._render(row)
            rows0.append(out0)
            rows1.append(out1)
        return [np.concatenate(rows0), np.concatenate(rows1)]

    def _render(self, row: np.ndarray) -> list[np.ndarray]:
        h, w = row.shape[1:]
        plain, mirrored = ORACLE.get(digest(row)), ORACLE.get(digest(row[:, :, ::-1]))
        if plain is not None:
            return render_outputs(self._jitter(plain), (w, h), COCO.num_joints)
        if mirrored is not None:
            return render_flipped_outputs(self._jitter(mirrored), (w, h), COCO)
        return [np.zeros((1, 2 * COCO.num_joints, h // 4, w // 4), np.float32),
                np.zeros((1, COCO.num_joints, h // 2, w // 2), np.float32)]

    def _jitter(self, people: SyntheticPeople) -> SyntheticPeople:
        if self._rng is None:
            return people
        kp = people.keypoints  # (P, K, 2) network pixels
        heights = np.ptp(kp[..., 1], axis=1)[:, None]
        angles = self._rng.uniform(0, 2 * np.pi, kp.shape[:2])
        shift = FP16_SHIFT * heights[..., None] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
        return people.with_keypoints(kp + shift)

    def close(self) -> None:
        pass


def install(monkeypatch) -> None:
    """Make the torch backend the oracle for one test (PoseEstimator imports it from pose_stream.engine)."""
    import pose_stream.engine

    monkeypatch.setattr(pose_stream.engine, "TorchBackend", OracleBackend, raising=False)
    ORACLE.clear()
