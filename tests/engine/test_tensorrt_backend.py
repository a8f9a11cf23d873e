"""The real TensorRT path, end to end: runs only where tensorrt, pycuda and a CUDA GPU exist.

Builds a tiny FP16 engine (two input shapes, batch 1-2), runs it against ONNX Runtime FP32, and checks
the error paths that need a real plan: shapes outside the profiles, a sidecar for another TensorRT,
a corrupt plan in the cache, and the device-output mode.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from gpu_availability import why_no_tensorrt
from pose_stream.engine.accuracy import synthetic_frame
from pose_stream.engine.profiles import profiles_for
from pose_stream.errors import PoseStreamError
from pose_stream.export import compare_outputs

REASON = why_no_tensorrt()
pytestmark = [pytest.mark.tensorrt, pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"{REASON}")]

SHAPES = [(64, 96), (96, 64)]


def _build(onnx_path, engine_path, cache_dir, **kwargs):
    from pose_stream.engine.builder import build_engine

    return build_engine(onnx_path, engine_path, shapes=profiles_for((None, 3, None, None), SHAPES, (1, 2)),
                        cache_dir=cache_dir, progress=False, **kwargs)


@pytest.fixture(scope="module")
def built(tiny_onnx, tmp_path_factory):
    root = tmp_path_factory.mktemp("trt")
    return _build(tiny_onnx, root / "tiny_fp16.plan", root / "cache")


def test_build_checks_accuracy_and_is_reused(built, tiny_onnx):
    assert not built.reused and built.path.is_file()
    assert len(built.accuracy) == 2 and built.passed, built.summary()
    again = _build(tiny_onnx, built.path, built.path.parent / "cache")
    assert again.reused and "reusing" in again.reason


def test_engine_matches_onnxruntime(built, tiny_onnx):
    from pose_stream.engine.onnxruntime_backend import OnnxRuntimeBackend
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    with TensorRTBackend(built.path) as engine, OnnxRuntimeBackend(tiny_onnx, providers=["CPUExecutionProvider"]) as ref:
        assert engine.info.precision == "fp16" and engine.input_shape == (None, 3, None, None)
        for batch in (1, 2):
            for shape in SHAPES:
                x = np.concatenate([synthetic_frame(*shape, seed=i) for i in range(batch)])
                got, expected = engine.infer(x), ref.infer(x)
                k = engine.num_joints
                _, rel = compare_outputs([got[0][:, :k], got[1]], [expected[0][:, :k], expected[1]])
                assert rel <= 1e-2, f"batch {batch} {shape}: heatmap relative error {rel:.2e}"


def test_shape_outside_the_profiles_is_a_clear_error(built):
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    with TensorRTBackend(built.path) as engine:
        with pytest.raises(PoseStreamError, match="outside the engine's optimization profiles"):
            engine.infer(np.zeros((3, 3, 64, 96), np.float32))
        with pytest.raises(PoseStreamError, match="outside the engine's optimization profiles"):
            engine.infer(np.zeros((1, 3, 128, 128), np.float32))


def test_sidecar_for_another_tensorrt_is_refused(built, tmp_path):
    from pose_stream.engine.engine_cache import sidecar_path
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    plan = tmp_path / "copy.plan"
    shutil.copy(built.path, plan)
    side = json.loads(sidecar_path(built.path).read_text())
    side["tensorrt_version"] = "9.0.0"
    sidecar_path(plan).write_text(json.dumps(side))
    with pytest.raises(PoseStreamError, match="built for TensorRT 9.0.0"):
        TensorRTBackend(plan)


def test_corrupt_plan_is_rebuilt(built, tiny_onnx, tmp_path):
    import hashlib

    from pose_stream.engine.engine_cache import sidecar_path

    plan = tmp_path / "corrupt.plan"
    garbage = b"\x00" * 4096
    plan.write_bytes(garbage)
    side = json.loads(sidecar_path(built.path).read_text())
    side["plan_sha256"] = hashlib.sha256(garbage).hexdigest()
    sidecar_path(plan).write_text(json.dumps(side))
    result = _build(tiny_onnx, plan, tmp_path / "cache", check_accuracy=False)
    assert not result.reused and "failed to deserialize" in result.reason


def test_device_outputs_equal_host_outputs(built):
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    x = synthetic_frame(96, 64, seed=3)
    with TensorRTBackend(built.path) as engine:
        host = engine.infer(x)
        outputs = engine.infer_device(x)
        cuda = engine.cuda_context.driver
        with engine.cuda_context.active():
            copies = []
            for tensor in outputs:
                out = np.empty(tensor.shape, dtype=tensor.dtype)
                cuda.memcpy_dtoh_async(out, tensor.pointer, outputs.stream)
                copies.append(out)
            outputs.stream.synchronize()
        for copy, expected in zip(copies, host):
            np.testing.assert_array_equal(copy, expected)


def test_estimator_on_device_outputs_equals_host_copies(built):
    """The engine's outputs read in place by the CUDA aggregation give the people that the same engine's
    host copies give (every aggregation path equals the reference bit for bit)."""
    from pose_stream.estimator import PoseEstimator

    rng = np.random.default_rng()
    common = dict(model="tiny_w8", engine=built.path, backend="tensorrt", input_size=64)
    with PoseEstimator(**common) as on_device, PoseEstimator(device_outputs=False, **common) as host:
        assert on_device.aggregate_in_infer_thread
        for _ in range(3):
            frame = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
            raw = on_device.infer(on_device.prepare(frame))
            assert raw.on_device, "the CUDA aggregation did not start (see the log for why)"
            got, want = on_device.group(on_device.aggregate(raw)), host.predict(frame)
            np.testing.assert_array_equal(got.keypoints, want.keypoints)
            np.testing.assert_array_equal(got.scores, want.scores)
