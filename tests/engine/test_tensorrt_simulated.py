"""The TensorRT builder and backend driven through stand-ins for tensorrt and pycuda (fake_gpu.py here).

TensorRT cannot be installed on this project's machines; these tests run pose-stream's own control
flow (cache decisions, profiles, buffer sizing, host/device copies, context handling, cleanup,
error messages) against fakes of the documented API. tests/engine/test_tensorrt_backend.py runs the same
ideas against the real thing where it exists.
"""
from __future__ import annotations

import json
import threading

import numpy as np
import onnx
import pytest

import fake_gpu
from pose_stream.engine.engine_cache import sidecar_path
from pose_stream.engine.profiles import profiles_for
from pose_stream.errors import PoseStreamError
from pose_stream.export import compare_outputs

SHAPES = [(64, 96), (96, 64)]


@pytest.fixture
def gpu(monkeypatch):
    return fake_gpu.install(monkeypatch)


def two_profiles():
    return profiles_for((None, 3, None, None), SHAPES, (1, 2))


def build(onnx_path, tmp_path, **kwargs):
    from pose_stream.engine.builder import build_engine

    kwargs.setdefault("shapes", two_profiles())
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    kwargs.setdefault("progress", False)
    return build_engine(onnx_path, **kwargs)


def ort_reference(onnx_path, x):
    from pose_stream.engine.onnxruntime_backend import OnnxRuntimeBackend

    with OnnxRuntimeBackend(onnx_path, providers=["CPUExecutionProvider"]) as ref:
        return ref.infer(x)


def test_build_writes_plan_sidecar_and_timing_cache_then_reuses(gpu, tiny_onnx, tmp_path):
    trt, _, state = gpu
    first = build(tiny_onnx, tmp_path)
    assert not first.reused and first.path.parent == tmp_path / "cache"
    assert first.path.name.startswith("tiny_w8_dynamic-fp16-")
    assert trt.Builder.builds == 1
    side = json.loads(sidecar_path(first.path).read_text())
    assert side["tensorrt_version"] == "10.9.0.34" and side["gpu_name"] == "NVIDIA Fake GPU"
    assert side["compute_capability"] == [9, 0] and side["precision"] == "fp16"
    assert [p["max"] for p in side["profiles"]] == [[2, 3, 64, 96], [2, 3, 96, 64]]
    assert set(side["accuracy"]) == {"1..2x3x64x96", "1..2x3x96x64"} and first.passed
    assert len(first.accuracy) == 2 and all(a.report.heatmap_max_error < 1e-2 for a in first.accuracy)
    timing = list((tmp_path / "cache" / "timing").iterdir())
    assert [t.name for t in timing] == ["trt10.9.0.34-nvidia-fake-gpu-sm90.cache"]
    assert state.context_stack == [] and state.retained == 0 and state.memory == {}

    second = build(tiny_onnx, tmp_path)
    assert second.reused and second.path == first.path and "reusing" in second.reason
    assert trt.Builder.builds == 1
    assert "reused" in second.summary() and "1..2x3x64x96" in second.summary()

    forced = build(tiny_onnx, tmp_path, force=True, check_accuracy=False)
    assert not forced.reused and trt.Builder.builds == 2
    assert timing[0].read_bytes() == fake_gpu.TIMING_MAGIC + b"2"  # the saved cache was loaded and grown


def test_changed_onnx_gpu_or_tensorrt_rebuilds(monkeypatch, tiny_onnx, tmp_path):
    trt, _, _ = fake_gpu.install(monkeypatch)
    engine = tmp_path / "tiny.plan"
    assert not build(tiny_onnx, tmp_path, engine_path=engine, check_accuracy=False).reused
    assert build(tiny_onnx, tmp_path, engine_path=engine, check_accuracy=False).reused

    edited = tmp_path / "edited.onnx"
    model = onnx.load(str(tiny_onnx))
    model.doc_string = "retrained"
    onnx.save(model, str(edited))
    result = build(edited, tmp_path, engine_path=engine, check_accuracy=False)
    assert not result.reused and "ONNX model changed" in result.reason

    fake_gpu.install(monkeypatch, devices=[("NVIDIA Other GPU", (8, 6))])
    result = build(edited, tmp_path, engine_path=engine, check_accuracy=False)
    assert not result.reused and "GPU changed" in result.reason and "sm_86" in result.reason

    fake_gpu.install(monkeypatch, devices=[("NVIDIA Other GPU", (8, 6))], version="10.10.0.31")
    result = build(edited, tmp_path, engine_path=engine, check_accuracy=False)
    assert not result.reused and "TensorRT changed (10.9.0.34 -> 10.10.0.31)" in result.reason


def test_plan_that_fails_to_deserialize_is_a_miss(gpu, tiny_onnx, tmp_path):
    import hashlib

    trt, _, _ = gpu
    engine = tmp_path / "tiny.plan"
    build(tiny_onnx, tmp_path, engine_path=engine, check_accuracy=False)
    garbage = b"\x00garbage, not a plan"
    engine.write_bytes(garbage)
    side = json.loads(sidecar_path(engine).read_text())
    side["plan_sha256"] = hashlib.sha256(garbage).hexdigest()  # a consistent sidecar: only loading can tell
    sidecar_path(engine).write_text(json.dumps(side))
    result = build(tiny_onnx, tmp_path, engine_path=engine, check_accuracy=False)
    assert not result.reused and trt.Builder.builds == 2
    assert "failed to deserialize" in result.reason and "Magic tag does not match" in result.reason
    assert json.loads(engine.read_bytes())["magic"] == fake_gpu.PLAN_MAGIC


def test_parser_errors_name_the_nodes(monkeypatch, tiny_onnx, tmp_path):
    fake_gpu.install(monkeypatch, unsupported_ops=("Resize",))
    with pytest.raises(PoseStreamError) as err:
        build(tiny_onnx, tmp_path, check_accuracy=False)
    message = str(err.value)
    assert message.startswith("TensorRT's ONNX parser rejected") and "\n" not in message
    assert "(Resize): No importer registered for op: Resize" in message and "node #" in message
    assert "more)" in message  # tiny_w8 has 7 Resize nodes; the first 3 are shown


def test_tensorrt_without_fp16_flag_is_explained(gpu, tiny_onnx, tmp_path):
    trt, _, _ = gpu
    del trt.BuilderFlag.FP16
    with pytest.raises(PoseStreamError, match="no FP16 builder flag"):
        build(tiny_onnx, tmp_path)
    assert not build(tiny_onnx, tmp_path, fp16=False, check_accuracy=False).reused


def test_unusable_timing_cache_is_replaced(gpu, tiny_onnx, tmp_path, caplog):
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"from another TensorRT")
    build(tiny_onnx, tmp_path, timing_cache=timing, check_accuracy=False)
    assert "does not fit" in caplog.text
    assert timing.read_bytes() == fake_gpu.TIMING_MAGIC + b"1"


def test_backend_runs_every_profile_and_matches_onnxruntime(gpu, tiny_onnx, tmp_path):
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    trt, cuda, state = gpu
    engine = build(tiny_onnx, tmp_path, fp16=False, check_accuracy=False).path
    rng = np.random.default_rng(0)
    with TensorRTBackend(engine) as backend:
        assert backend.input_shape == (None, 3, None, None) and backend.num_joints == 17
        assert backend.info.name == "tensorrt" and backend.info.precision == "fp32"
        context = trt.Runtime.engines[-1].contexts[0]
        # Device buffers are sized once, for the largest shape of any profile.
        sizes = sorted(b.size for b in state.memory.values())
        assert sizes == sorted([2 * 3 * 64 * 96 * 4, 2 * 34 * 16 * 24 * 4, 2 * 17 * 32 * 48 * 4])
        for batch, shape, profile in [(1, (64, 96), 0), (2, (96, 64), 1), (2, (64, 96), 0), (1, (96, 64), 1)]:
            x = rng.normal(size=(batch, 3, *shape)).astype(np.float32)
            got = backend.infer(x)
            assert context.profile == profile
            _, rel = compare_outputs(got, ort_reference(tiny_onnx, x))
            assert rel < 1e-5
        assert context.executions == 4
        with pytest.raises(PoseStreamError, match=r"input shape 3x3x64x96 is outside .*1\.\.2x3x64x96"):
            backend.infer(np.zeros((3, 3, 64, 96), np.float32))
        with pytest.raises(PoseStreamError, match="outside the engine's optimization profiles"):
            backend.infer(np.zeros((1, 3, 128, 128), np.float32))
        assert state.context_stack == []  # pushed only while working
    assert state.memory == {} and all(h.freed for h in state.host_allocations)
    assert state.context_stack == [] and state.retained == 0


def test_device_outputs_stay_on_the_gpu(gpu, tiny_onnx, tmp_path):
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    _, cuda, state = gpu
    engine = build(tiny_onnx, tmp_path, check_accuracy=False).path
    x = np.random.default_rng(1).normal(size=(2, 3, 96, 64)).astype(np.float32)
    with TensorRTBackend(engine) as backend:
        host = backend.infer(x)
        device = backend.infer_device(x)
        assert device.context is backend.cuda_context and isinstance(device.stream_handle, int)
        assert [t.name for t in device] == ["out0", "out1"]
        assert [t.shape for t in device] == [h.shape for h in host]
        for tensor, expected in zip(device, host):
            raw = cuda.device_bytes(tensor.pointer, tensor.nbytes).view(np.float32).reshape(tensor.shape)
            np.testing.assert_array_equal(raw, expected)


def test_backend_belongs_to_its_thread(gpu, tiny_onnx, tmp_path):
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    engine = build(tiny_onnx, tmp_path, check_accuracy=False).path
    backend = TensorRTBackend(engine)
    errors = []

    def use() -> None:
        for call in (lambda: backend.infer(np.zeros((1, 3, 64, 96), np.float32)), backend.close):
            try:
                call()
            except PoseStreamError as exc:
                errors.append(str(exc))

    worker = threading.Thread(target=use)
    worker.start()
    worker.join(timeout=30)
    assert len(errors) == 2 and all("belongs to thread" in e for e in errors)
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(PoseStreamError, match="closed"):
        backend.infer(np.zeros((1, 3, 64, 96), np.float32))


def test_engine_for_another_tensorrt_or_gpu_is_refused_clearly(monkeypatch, tiny_onnx, tmp_path):
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    fake_gpu.install(monkeypatch)
    engine = build(tiny_onnx, tmp_path, check_accuracy=False).path
    _, _, state = fake_gpu.install(monkeypatch, version="10.10.0.31")
    with pytest.raises(PoseStreamError) as err:
        TensorRTBackend(engine)
    assert "built for TensorRT 10.9.0.34 (this machine has 10.10.0.31)" in str(err.value)
    assert "pose-stream build-engine --onnx" in str(err.value)
    assert state.retained == 0 and state.context_stack == []

    _, _, state = fake_gpu.install(monkeypatch, devices=[("NVIDIA A10", (8, 6))])
    with pytest.raises(PoseStreamError, match=r"NVIDIA Fake GPU sm_90 \(this GPU is NVIDIA A10 sm_86\)"):
        TensorRTBackend(engine)

    sidecar_path(engine).unlink()  # without a sidecar, TensorRT's own refusal is reported
    fake_gpu.install(monkeypatch, version="10.10.0.31")
    with pytest.raises(PoseStreamError, match="could not load .*not compatible with this version"):
        TensorRTBackend(engine)


def test_missing_gpu_and_missing_engine(monkeypatch, tmp_path):
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    with pytest.raises(PoseStreamError, match="TensorRT engine not found"):
        TensorRTBackend(tmp_path / "absent.plan")
    fake_gpu.install(monkeypatch, devices=[])
    plan = tmp_path / "some.plan"
    plan.write_bytes(b"x")
    with pytest.raises(PoseStreamError, match="no usable CUDA GPU: cuInit failed"):
        TensorRTBackend(plan)


def test_cuda_context_nesting_and_close(gpu):
    from pose_stream.engine.cuda_context import CudaContext

    _, _, state = gpu
    ctx = CudaContext(0)
    assert ctx.description == "cuda:0 (NVIDIA Fake GPU, sm_90)" and state.retained == 1
    with ctx.active():
        with ctx.active():
            assert len(state.context_stack) == 2 and ctx.is_active
        assert len(state.context_stack) == 1
    assert state.context_stack == [] and not ctx.is_active
    with pytest.raises(PoseStreamError, match="without a matching activate"):
        ctx.deactivate()
    ctx.activate()
    ctx.close()  # pops what is still pushed, then releases
    assert state.context_stack == [] and state.retained == 0
    with pytest.raises(PoseStreamError, match="closed"):
        ctx.activate()
    with pytest.raises(PoseStreamError, match="device 3 does not exist"):
        CudaContext(3)


def test_failed_accuracy_check_names_the_output_and_is_not_reused(gpu, tiny_onnx, tmp_path):
    from pose_stream.engine.accuracy import AccuracyLimits

    trt, _, _ = gpu
    strict = AccuracyLimits(heatmap_relative=1e-7)  # FP16 rounding in the fake is far above this
    first = build(tiny_onnx, tmp_path, accuracy_limits=strict)
    assert not first.passed
    failures = [f for a in first.accuracy for f in a.report.failures]
    assert any(f.startswith("out0 heatmaps") for f in failures) and any(f.startswith("out1 heatmaps") for f in failures)
    assert first.drifted == ("out0 heatmaps", "out1 heatmaps")  # tags at the peaks stay within 2e-2
    assert "FAILED" in first.summary()
    again = build(tiny_onnx, tmp_path, accuracy_limits=strict)
    assert not again.reused and "last accuracy check failed" in again.reason and trt.Builder.builds == 2


def test_build_engine_command(gpu, tiny_onnx, tmp_path, capsys):
    from pose_stream.cli.main import main

    args = ["build-engine", "--onnx", str(tiny_onnx), "--input-size", "64x96", "--input-size", "96x64",
            "--batch", "1-2", "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "built in" in out and "1..2x3x64x96, 1..2x3x96x64" in out and out.count(": passed") == 2
    assert main(args) == 0
    assert "reused, built 20" in capsys.readouterr().out
