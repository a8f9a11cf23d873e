"""TensorRT device outputs feeding the CUDA aggregation, through stand-ins (fake_gpu.py, support/emulated_cuda.py).

The fake TensorRT runs the ONNX model with ONNX Runtime into fake device memory; the CUDA aggregator's kernels
are emulated with the reference's arithmetic, reading that same memory by address. What this proves is
PoseEstimator's device path: pointers and row offsets, the device-to-device copies that keep a frame's
earlier passes, stream and context use, the thread rule, the fallback and cleanup. The real kernels and
TensorRT run in tests/engine/test_tensorrt_backend.py and the gpu tests where they exist.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import fake_gpu
from emulated_cuda import EmulatedDriver
from pose_stream.engine.profiles import ShapeProfile
from pose_stream.errors import PoseStreamError
from pose_stream.decoding.grouping_types import GroupingParams

# Low thresholds: the random network's people are weak, and the comparison needs some.
PARAMS = GroupingParams(detection_threshold=0.0, tag_threshold=50.0)


@pytest.fixture
def gpu(monkeypatch):
    """Fake tensorrt + pycuda, and aggregate_cuda's pycuda driver replaced by the emulated kernels reading the
    fake device memory (one address space, as on a real GPU)."""
    from pose_stream.decoding import aggregate_cuda

    trt, cuda, state = fake_gpu.install(monkeypatch)

    class SharedMemoryDriver(EmulatedDriver):
        def __init__(self, source: str) -> None:
            super().__init__(source)
            self.memory = state.memory

        def alloc(self, nbytes):
            ptr = next(state.next_pointer)
            self.memory[ptr] = np.zeros(max(nbytes, 1), np.uint8)
            return ptr

    monkeypatch.setitem(aggregate_cuda._DRIVERS, "pycuda", SharedMemoryDriver)
    return trt, cuda, state


def engine_for(onnx_path, tmp_path, batch: tuple[int, int]) -> str:
    from pose_stream.engine.builder import build_engine

    # FP32 plan: the fake engine's outputs then equal ONNX Runtime's exactly.
    profile = ShapeProfile((batch[0], 3, 32, 32), (batch[1], 3, 64, 96), (batch[1], 3, 256, 256))
    result = build_engine(onnx_path, fp16=False, shapes=[profile], cache_dir=tmp_path / "engines",
                          progress=False, check_accuracy=False)
    return str(result.path)


def image(rng, hw=(64, 96)) -> np.ndarray:
    return rng.integers(0, 256, size=(*hw, 3), dtype=np.uint8)


def estimators(onnx_path, engine, **kwargs):
    from pose_stream.estimator import PoseEstimator

    common = dict(model="tiny_w8", input_size=64, params=PARAMS, **kwargs)
    return (PoseEstimator(engine=engine, backend="tensorrt", **common),
            PoseEstimator(onnx=onnx_path, backend="onnxruntime", **common))


def assert_same_people(device_poses, host_poses, message):
    assert len(host_poses) > 0, f"the comparison needs people ({message})"
    np.testing.assert_array_equal(device_poses.keypoints, host_poses.keypoints, err_msg=message)
    np.testing.assert_array_equal(device_poses.scores, host_poses.scores, err_msg=message)


@pytest.mark.parametrize("batch, scales", [((1, 2), (1.0,)), ((1, 1), (1.0,)), ((1, 2), (1.0, 0.5))],
                         ids=["flip-in-one-call", "batch-1-engine", "two-scales"])
def test_device_outputs_equal_the_host_path(gpu, tiny_onnx, tmp_path, rng, batch, scales):
    _, _, state = gpu
    engine = engine_for(tiny_onnx, tmp_path, batch)
    on_gpu, on_cpu = estimators(tiny_onnx, engine, scales=scales)
    with on_gpu, on_cpu:
        assert on_gpu.aggregate_in_infer_thread and not on_cpu.aggregate_in_infer_thread
        for _ in range(2):
            frame = image(rng)
            state.copies.update(dtoh=0, dtod=0)
            raw = on_gpu.infer(on_gpu.prepare(frame))
            assert raw.on_device and all(hasattr(t, "pointer") for s in raw.scales for t in s.outputs)
            aggregated = on_gpu.aggregate(raw)
            assert aggregated.grouped is not None  # the CUDA path groups at once
            device_poses = on_gpu.group(aggregated)
            assert state.copies["dtoh"] == 0, "network outputs were copied to the host"
            calls = len(scales) * (2 // batch[1])
            output_bytes = sum(t.nbytes for s in raw.scales for t in (*s.outputs, *s.flipped))
            if calls > 1:  # every call but the last was kept on the device
                assert 0 < state.copies["dtod"] < output_bytes
            else:
                assert state.copies["dtod"] == 0
            assert_same_people(device_poses, on_cpu.predict(frame), f"batch {batch}, scales {scales}")
    assert state.memory == {} and state.context_stack == [] and state.retained == 0


def test_predict_batch_and_predict_agree(gpu, tiny_onnx, tmp_path, rng):
    engine = engine_for(tiny_onnx, tmp_path, (1, 2))
    on_gpu, on_cpu = estimators(tiny_onnx, engine)
    frames = [image(rng), image(rng, (96, 64)), image(rng)]
    with on_gpu, on_cpu:
        for got, want in zip(on_gpu.predict_batch(frames), on_cpu.predict_batch(frames)):
            assert_same_people(got, want, "predict_batch")


def test_stale_device_outputs_are_refused(gpu, tiny_onnx, tmp_path, rng):
    engine = engine_for(tiny_onnx, tmp_path, (1, 2))
    on_gpu, _ = estimators(tiny_onnx, engine)
    with on_gpu:
        first = on_gpu.infer(on_gpu.prepare(image(rng)))
        second = on_gpu.infer(on_gpu.prepare(image(rng)))
        with pytest.raises(PoseStreamError, match="overwritten by a later infer"):
            on_gpu.aggregate(first)
        on_gpu.aggregate(second)


def test_device_outputs_are_used_only_in_the_backend_thread(gpu, tiny_onnx, tmp_path, rng):
    engine = engine_for(tiny_onnx, tmp_path, (1, 2))
    on_gpu, _ = estimators(tiny_onnx, engine)
    raw = on_gpu.infer(on_gpu.prepare(image(rng)))
    errors = []

    def aggregate_elsewhere():
        try:
            on_gpu.aggregate(raw)
        except PoseStreamError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=aggregate_elsewhere)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "was used from thread" in errors[0]
    on_gpu.close()


def test_the_pipeline_aggregates_device_outputs_in_the_inference_thread(gpu, tiny_onnx, tmp_path, rng):
    from pose_stream.pipeline import GeneratedSource, Pipeline
    from pose_stream.pipeline.sinks import Sink

    class CollectSink(Sink):
        def __init__(self) -> None:
            self.results = []

        def write(self, result) -> None:
            self.results.append(result)

    _, _, state = gpu
    engine = engine_for(tiny_onnx, tmp_path, (1, 2))
    on_gpu, _ = estimators(tiny_onnx, engine)
    frames = [image(rng) for _ in range(4)]
    collect = CollectSink()
    source = GeneratedSource(len(frames), (96, 64), frames=lambda n, size: (f for f in frames))
    stats = Pipeline(on_gpu, [source], [collect]).run()  # aggregating in another thread would fail
    assert stats.frames == 4 and len(collect.results) == 4
    _, on_cpu = estimators(tiny_onnx, engine)
    with on_cpu:
        for result, frame in zip(collect.results, frames):
            assert_same_people(result.poses, on_cpu.predict(frame), "pipeline")
    assert state.memory == {} and state.context_stack == [] and state.retained == 0


def test_without_a_kernel_compiler_it_falls_back_to_host_copies(gpu, tiny_onnx, tmp_path, rng, monkeypatch, caplog):
    from pose_stream.decoding import aggregate_cuda

    _, _, state = gpu

    def no_nvcc(driver="pycuda"):
        raise PoseStreamError("the CUDA aggregation kernels do not compile here (pycuda): nvcc not found")

    monkeypatch.setattr(aggregate_cuda, "compile_kernels", no_nvcc)
    engine = engine_for(tiny_onnx, tmp_path, (1, 2))
    on_gpu, on_cpu = estimators(tiny_onnx, engine)
    frame = image(rng)
    with on_gpu, on_cpu:
        raw = on_gpu.infer(on_gpu.prepare(frame))
        assert not raw.on_device and not on_gpu.aggregate_in_infer_thread
        assert "nvcc not found" in caplog.text and "aggregated on the CPU" in caplog.text
        assert state.copies["dtoh"] > 0
        assert_same_people(on_gpu.group(on_gpu.aggregate(raw)), on_cpu.predict(frame), "fallback")
