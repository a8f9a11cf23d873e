"""One conformance suite for every inference backend present on the machine.

Each backend runs the same network (tiny_w8 with non-trivial weights) on the same realistic inputs,
batch sizes 1 and 2, two input shapes, and must match PyTorch FP32 on the CPU:
FP32 backends within 1e-4 relative (max abs error / max |reference|) on both outputs,
FP16 backends within 1e-2 relative on the heatmaps (out0's first K channels, and out1).
Backends that are not available here are skipped, each with the reason.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from gpu_availability import ort_providers, why_no_tensorrt
from pose_stream.engine.accuracy import synthetic_frame
from pose_stream.export import compare_outputs

SHAPES = [(64, 96), (96, 64)]
BATCHES = [1, 2]
FP32_LIMIT = 1e-4
FP16_HEATMAP_LIMIT = 1e-2


@dataclass(frozen=True)
class BackendCase:
    name: str
    fp16: bool
    make: Callable  # (resources) -> Backend


class Resources:
    """What backends are made from; TensorRT engines are built on first use only."""

    def __init__(self, model, onnx_path, tmp_dir) -> None:
        self.model, self.onnx_path, self.tmp_dir = model, onnx_path, tmp_dir
        self._engines: dict[bool, object] = {}

    def engine(self, fp16: bool):
        if fp16 not in self._engines:
            from pose_stream.engine.builder import build_engine
            from pose_stream.engine.profiles import profiles_for

            shapes = profiles_for((None, 3, None, None), SHAPES, (min(BATCHES), max(BATCHES)))
            result = build_engine(self.onnx_path, self.tmp_dir / f"tiny_{'fp16' if fp16 else 'fp32'}.plan",
                                  fp16=fp16, shapes=shapes, cache_dir=self.tmp_dir, check_accuracy=False,
                                  progress=False)
            self._engines[fp16] = result.path
        return self._engines[fp16]


def _torch(device: str, fp16: bool) -> Callable:
    def make(res: Resources):
        from pose_stream.engine.torch_backend import TorchBackend

        return TorchBackend(copy.deepcopy(res.model), device=device, fp16=fp16)  # the backend moves its model

    return make


def _ort(providers: Callable) -> Callable:
    def make(res: Resources):
        from pose_stream.engine.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(res.onnx_path, providers=providers(res))

    return make


def _ort_tensorrt(fp16: bool) -> Callable:
    def providers(res: Resources) -> list:
        from pose_stream.engine.ort_providers import tensorrt_provider

        return [tensorrt_provider(fp16=fp16, cache_dir=res.tmp_dir / "ort-trt"), "CUDAExecutionProvider",
                "CPUExecutionProvider"]

    return _ort(providers)


def _tensorrt(fp16: bool) -> Callable:
    def make(res: Resources):
        from pose_stream.engine.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(res.engine(fp16))

    return make


def _cases() -> list:
    no_cuda = None if torch.cuda.is_available() else "PyTorch sees no CUDA GPU"
    ort_cuda = None if "CUDAExecutionProvider" in ort_providers() else \
        "ONNX Runtime has no CUDAExecutionProvider (needs onnxruntime-gpu and a GPU)"
    ort_trt = None if "TensorrtExecutionProvider" in ort_providers() else \
        "ONNX Runtime has no TensorrtExecutionProvider (needs onnxruntime-gpu, TensorRT and a GPU)"
    no_trt = why_no_tensorrt()
    table = [
        (BackendCase("torch-cpu-fp32", False, _torch("cpu", False)), None, []),
        (BackendCase("torch-cuda-fp32", False, _torch("cuda", False)), no_cuda, [pytest.mark.gpu]),
        (BackendCase("torch-cuda-fp16", True, _torch("cuda", True)), no_cuda, [pytest.mark.gpu]),
        (BackendCase("ort-cpu-fp32", False, _ort(lambda res: ["CPUExecutionProvider"])), None, []),
        (BackendCase("ort-cuda-fp32", False, _ort(lambda res: ["CUDAExecutionProvider", "CPUExecutionProvider"])),
         ort_cuda, [pytest.mark.gpu]),
        (BackendCase("ort-tensorrt-ep-fp32", False, _ort_tensorrt(False)), ort_trt, [pytest.mark.gpu, pytest.mark.tensorrt]),
        (BackendCase("ort-tensorrt-ep-fp16", True, _ort_tensorrt(True)), ort_trt, [pytest.mark.gpu, pytest.mark.tensorrt]),
        (BackendCase("tensorrt-fp32", False, _tensorrt(False)), no_trt, [pytest.mark.gpu, pytest.mark.tensorrt]),
        (BackendCase("tensorrt-fp16", True, _tensorrt(True)), no_trt, [pytest.mark.gpu, pytest.mark.tensorrt]),
    ]
    params = []
    for case, reason, marks in table:
        marks = list(marks)
        if reason:
            marks.append(pytest.mark.skip(reason=f"{case.name}: {reason}"))
        params.append(pytest.param(case, marks=marks, id=case.name))
    return params


@pytest.fixture(scope="module")
def resources(tiny_model, tiny_onnx, tmp_path_factory) -> Resources:
    return Resources(tiny_model, tiny_onnx, tmp_path_factory.mktemp("backends"))


@pytest.fixture(scope="module")
def backends(resources):
    """Backends opened on first use and closed at the end of the module (in this thread)."""
    opened: dict[str, object] = {}

    def get(case: BackendCase):
        if case.name not in opened:
            opened[case.name] = case.make(resources)
        return opened[case.name]

    yield get
    for backend in opened.values():
        backend.close()


@pytest.fixture(scope="module")
def reference(tiny_model):
    """PyTorch FP32 on the CPU: input batch and outputs per (batch, shape)."""
    cache: dict[tuple[int, tuple[int, int]], tuple[np.ndarray, list[np.ndarray]]] = {}

    def get(batch: int, shape: tuple[int, int]):
        key = (batch, shape)
        if key not in cache:
            x = np.concatenate([synthetic_frame(*shape, seed=10 * batch + i) for i in range(batch)])
            with torch.inference_mode():
                outputs = [t.numpy().copy() for t in tiny_model.float().cpu()(torch.from_numpy(x))]
            cache[key] = (x, outputs)
        return cache[key]

    return get


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"batch{b}")
@pytest.mark.parametrize("case", _cases())
def test_backend_matches_pytorch_fp32(case: BackendCase, batch, shape, backends, reference):
    backend = backends(case)
    x, expected = reference(batch, shape)
    got = backend.infer(x.copy())
    assert [g.shape for g in got] == [e.shape for e in expected]
    assert all(g.dtype == np.float32 and np.isfinite(g).all() for g in got)
    k = backend.num_joints
    assert k == expected[1].shape[1]
    if case.fp16:
        heat_got = [got[0][:, :k], got[1]]
        heat_ref = [expected[0][:, :k], expected[1]]
        max_abs, rel = compare_outputs(heat_got, heat_ref)
        assert rel <= FP16_HEATMAP_LIMIT, f"{case.name}: heatmaps relative error {rel:.2e} (max abs {max_abs:.2e})"
    else:
        max_abs, rel = compare_outputs(got, expected)
        assert rel <= FP32_LIMIT, f"{case.name}: relative error {rel:.2e} (max abs {max_abs:.2e})"


def test_reference_outputs_are_not_trivial(reference):
    """The comparison above means something only if the network's outputs have real structure."""
    _, (out0, out1) = reference(1, SHAPES[0])
    assert out0.std() > 0.1 and out1.std() > 0.1
    assert np.abs(out0).max() > 1.0


@pytest.mark.parametrize("before", [True, False])
def test_fp32_switch_turns_tf32_off_and_restores_it(before):
    """torch-cuda-fp32 runs its convolutions with cuDNN's TF32 off, and leaves the process-wide switch as it was."""
    from pose_stream.engine.torch_backend import ieee_fp32_convolutions

    torch.backends.cudnn.allow_tf32 = before
    try:
        with pytest.raises(RuntimeError), ieee_fp32_convolutions():
            assert torch.backends.cudnn.allow_tf32 is False
            raise RuntimeError("a failing forward pass")
        assert torch.backends.cudnn.allow_tf32 is before
    finally:
        torch.backends.cudnn.allow_tf32 = True
