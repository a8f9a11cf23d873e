"""EstimatorConfig: everything that decides what a PoseEstimator computes, validated in one place."""
from __future__ import annotations

import numpy as np
import pytest

from pose_stream.errors import PoseStreamError
from pose_stream.estimator import EstimatorConfig, PoseEstimator
from pose_stream.input_size import InputSize


def test_defaults_and_normalisation():
    config = EstimatorConfig(model="tiny_w8", input_size="128", scales=[0.5, 2, 1])
    assert config.input_size == InputSize(short=128) and config.scales == (2.0, 1.0, 0.5)
    assert config.backend_spec.name == "torch" and config.model_file is None
    assert config.joint_set.name == "coco"
    assert EstimatorConfig(model="tiny_w8", input_size=InputSize(exact=(128, 192))).input_size.exact == (128, 192)
    assert EstimatorConfig(model="tiny_w8", onnx="m.onnx").backend_spec.name == "onnxruntime"
    assert config.with_options(flip=False).flip is False


@pytest.mark.parametrize("options, fragment", [
    (dict(model="w99"), "unknown model 'w99'"),
    (dict(input_size=500), "multiple of 32"),
    (dict(input_size="512x500"), "multiples of 32"),
    (dict(scales=(2.0, 0.5)), "scale 1.0"),
    (dict(scales=(1.0, 1.0)), "distinct positive"),
    (dict(max_aspect=0.5), "max_aspect must be at least 1"),
    (dict(device="tpu"), "unknown device 'tpu'"),
    (dict(backend="magic"), "unknown backend 'magic'"),
    (dict(onnx="m.onnx", backend="torch"), "m.onnx is a ONNX model"),
    (dict(weights="w.pth", onnx="m.onnx"), "give one model file"),
    (dict(precision="int8"), "precision must be fp32 or fp16"),
    (dict(onnx="m.onnx", precision="fp16"), "applies to the torch backend"),
])
def test_bad_settings_are_one_line(options, fragment):
    with pytest.raises(PoseStreamError, match=fragment):
        EstimatorConfig(model=options.pop("model", "tiny_w8"), **options)


def test_an_estimator_takes_a_config_or_its_fields_alike():
    config = EstimatorConfig(model="tiny_w8", input_size=64, flip=False, device="cpu")
    image = np.random.default_rng(3).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    with PoseEstimator(config) as a, PoseEstimator("tiny_w8", input_size=64, flip=False, device="cpu") as b, \
            PoseEstimator(config, flip=True) as c:
        assert a.config == b.config and c.config.flip
        for x, y in zip(a.prepare(image).inputs, b.prepare(image).inputs):
            np.testing.assert_array_equal(x, y)


def test_an_exact_input_size_runs_end_to_end_and_maps_back_to_the_image():
    image = np.random.default_rng(4).integers(0, 255, (90, 200, 3), dtype=np.uint8)
    with PoseEstimator("tiny_w8", input_size="64x128", device="cpu") as estimator:
        prepared = estimator.prepare(image)
        assert prepared.inputs[0].shape == (2, 3, 64, 128) and prepared.transform.image_size == (200, 90)
        poses = estimator.predict(image)
    assert poses.keypoints.shape[1:] == (17, 3)


def test_torch_preprocessing_gives_the_same_inputs_and_outputs_as_the_cpu_path(tmp_path):
    """The frame warped and normalised with torch (on the CPU here; on the GPU in the fast path) makes the same
    network inputs and outputs as OpenCV's warp, bit for bit, at two scales with the flip."""
    import torch

    from pose_stream.models import build_model

    weights = tmp_path / "tiny.pth"
    torch.save(build_model("tiny_w8").state_dict(), weights)
    image = np.random.default_rng(5).integers(0, 255, (120, 200, 3), dtype=np.uint8)
    common = dict(weights=weights, input_size=64, scales=(1.0, 2.0), device="cpu")
    with PoseEstimator("tiny_w8", **common) as cpu, \
            PoseEstimator("tiny_w8", torch_preprocess=True, eager=True, **common) as dev:  # the backend's device
        plain, torched = cpu.prepare(image), dev.prepare(image)
        assert not isinstance(torched.inputs[0], np.ndarray)
        for x, y in zip(plain.inputs, torched.inputs):
            np.testing.assert_array_equal(x, y.numpy())
        for a, b in zip(cpu.infer(plain).scales, dev.infer(torched).scales):
            for x, y in zip((*a.outputs, *a.flipped), (*b.outputs, *b.flipped)):
                np.testing.assert_array_equal(x, y)
    with pytest.raises(PoseStreamError, match="torch preprocessing needs a torch backend"):
        EstimatorConfig(model="tiny_w8", onnx="m.onnx", torch_preprocess=True)
