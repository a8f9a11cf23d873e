"""A stand-in for `pose_stream.estimator.PoseEstimator` (planned API) built from the benchmark's baseline stages.

It lets the bench and eval commands be tested end to end before the decoding branch lands. With an oracle
entry for an image (digest -> people in image pixels), its "network" renders the outputs those people would
give (a synthetic network), so decoding must find them again.
"""
from __future__ import annotations

import hashlib
import types

import numpy as np

from pose_stream.benchmarking.baseline import BaselineConfig, ReferenceStyleBaseline, reference_affine
from pose_stream.benchmarking.synthetic import render_outputs
from pose_stream.engine import BackendInfo
from pose_stream.models import build_model, get_config, load_checkpoint
from pose_stream.poses import Poses

ORACLE: dict[str, np.ndarray] = {}


def digest(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class FakePoseEstimator:
    def __init__(self, model="w32_512", weights=None, onnx=None, engine=None, backend="auto", input_size=512,
                 flip=True, scales=(1.0,), device="auto", fp16=False, noise_seed=0):
        config = get_config(model)
        network = build_model(model)
        if weights:
            load_checkpoint(network, weights)
        self.joint_set = config.joint_set
        self._baseline = ReferenceStyleBaseline(network, BaselineConfig(input_size, flip, config.joint_set))
        self._noise = 3.0 if fp16 else 0.0
        self._rng = np.random.default_rng(noise_seed)
        self.backend_info = BackendInfo(backend, "cpu", "fp16" if fp16 else "fp32")
        self.closed = False

    def prepare(self, image):
        tensor, info = self._baseline.prepare(image)
        return image, tensor, info

    def infer(self, prepared):
        image, tensor, info = prepared
        people = ORACLE.get(digest(image))
        if people is None:
            outputs, flipped = self._baseline.infer(tensor)
            return outputs, flipped, info
        forward = reference_affine(info)
        on_network = people @ forward[:, :2].T + forward[:, 2]
        flip = self._baseline.config.flip
        rendered = [render_outputs(on_network, info.network_size, self.joint_set, flipped=f) for f in (False, True)]
        return self._baseline.to_device(rendered[0]), self._baseline.to_device(rendered[1]) if flip else None, info

    def aggregate(self, raw):
        outputs, flipped, info = raw
        return (*self._baseline.aggregate(outputs, flipped, info.network_size), info)

    def group(self, aggregated):
        poses = self._baseline.group(*aggregated)
        if not self._noise or len(poses) == 0:
            return poses
        keypoints = poses.keypoints.copy()
        keypoints[..., :2] += self._rng.normal(0, self._noise, keypoints[..., :2].shape)
        return Poses(keypoints, poses.scores, poses.joint_set)

    def predict(self, image):
        return self.group(self.aggregate(self.infer(self.prepare(image))))

    def predict_batch(self, images):
        return [self.predict(image) for image in images]

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def fake_decode(outputs, flipped_outputs=None, *, image_size, input_size=512, dataset="coco"):
    from pose_stream.joints import get_joint_set

    model = build_model("tiny_w8")
    baseline = ReferenceStyleBaseline(model, BaselineConfig(input_size, flipped_outputs is not None, get_joint_set(dataset)))
    return baseline.decode_outputs(outputs, flipped_outputs, image_size)


def install(monkeypatch) -> None:
    """Make `pose_stream.estimator.PoseEstimator` and `pose_stream.decode` the fakes for one test."""
    import sys

    import pose_stream

    module = types.ModuleType("pose_stream.estimator")
    module.PoseEstimator = FakePoseEstimator
    monkeypatch.setitem(sys.modules, "pose_stream.estimator", module)
    monkeypatch.setattr(pose_stream, "decode", fake_decode, raising=False)
