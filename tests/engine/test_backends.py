import numpy as np
import pytest

from pose_stream.engine import OnnxRuntimeBackend, TorchBackend
from pose_stream.errors import PoseStreamError
from pose_stream.export import compare_outputs


def test_torch_and_onnxruntime_backends_agree(w32_model, w32_dynamic_onnx):
    path, _ = w32_dynamic_onnx
    x = np.random.default_rng().standard_normal((1, 3, 128, 192)).astype(np.float32)
    with TorchBackend(w32_model, device="cpu") as torch_backend, OnnxRuntimeBackend(path) as ort_backend:
        assert torch_backend.num_joints == ort_backend.num_joints == 17
        assert ort_backend.input_shape == (None, 3, None, None)
        assert "CPU" in ort_backend.info.detail and ort_backend.info.precision == "fp32"
        _, rel = compare_outputs(ort_backend.infer(x), torch_backend.infer(x))
    assert rel <= 1e-4


def test_backends_reject_bad_batches(w32_model):
    with TorchBackend(w32_model, device="cpu") as backend:
        with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
            backend.infer(np.zeros((3, 64, 64), np.float32))
        with pytest.raises(ValueError, match="multiples of 32"):
            backend.infer(np.zeros((1, 3, 70, 64), np.float32))
    with pytest.raises(PoseStreamError, match="closed"):
        backend.infer(np.zeros((1, 3, 64, 64), np.float32))


def test_onnxruntime_missing_and_corrupt_models(tmp_path):
    with pytest.raises(PoseStreamError, match="ONNX model not found"):
        OnnxRuntimeBackend(tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00garbage")
    with pytest.raises(PoseStreamError, match="cannot load ONNX model") as err:
        OnnxRuntimeBackend(corrupt)
    assert "\n" not in str(err.value)


def test_fp16_on_cpu_is_refused(w32_model):
    with pytest.raises(PoseStreamError, match="need a GPU"):
        TorchBackend(w32_model, device="cpu", fp16=True)


@pytest.mark.slow
def test_torch_compile_gives_the_eager_outputs(tiny_model):
    """torch.compile (Inductor) is an alternative fast path to CUDA graphs; it must compute the same network."""
    import copy

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 64, 96)).astype(np.float32)
    with TorchBackend(copy.deepcopy(tiny_model), device="cpu") as eager, \
            TorchBackend(copy.deepcopy(tiny_model), device="cpu", compile=True) as compiled:
        assert compiled.info.detail == "compiled"
        for a, b in zip(eager.infer(x), compiled.infer(x)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_channels_last_gives_the_same_outputs(tiny_model):
    import copy

    x = np.random.default_rng(1).standard_normal((3, 3, 64, 96)).astype(np.float32)
    with TorchBackend(copy.deepcopy(tiny_model), device="cpu") as nchw, \
            TorchBackend(copy.deepcopy(tiny_model), device="cpu", channels_last=True) as nhwc:
        for a, b in zip(nchw.infer(x), nhwc.infer(x)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    with pytest.raises(PoseStreamError, match="alternatives"):
        TorchBackend(copy.deepcopy(tiny_model), device="cpu", compile=True, cuda_graph=True)
