import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pose_stream.export import ALLOWED_OPS, ExportError, compare_outputs, export_onnx
from pose_stream.models import build_model


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["out0", "out1"], {"input": x})


def _torch(model, x):
    with torch.no_grad():
        return [t.numpy() for t in model(torch.from_numpy(x))]


def test_dynamic_w32_export_is_verified(w32_dynamic_onnx):
    path, report = w32_dynamic_onnx
    assert report.opset >= 17
    assert report.relative_error <= 1e-4
    assert report.inputs == {"input": ["batch", 3, "height", "width"]}
    assert set(report.outputs) == {"out0", "out1"}
    assert set(report.ops) <= ALLOWED_OPS and "Identity" not in report.ops
    assert report.ops["Resize"] > 0 and report.ops["ConvTranspose"] == 1
    onnx.checker.check_model(onnx.load(str(path)))


@pytest.mark.parametrize("batch, hw", [(1, (128, 192)), (2, (96, 64))], ids=["trace-size", "other-size-batch2"])
def test_dynamic_model_matches_torch_at_several_sizes(w32_model, w32_dynamic_onnx, batch, hw):
    path, _ = w32_dynamic_onnx
    x = np.random.default_rng().standard_normal((batch, 3, *hw)).astype(np.float32)
    got, expected = _run(path, x), _torch(w32_model, x)
    assert got[0].shape == (batch, 34, hw[0] // 4, hw[1] // 4)
    assert got[1].shape == (batch, 17, hw[0] // 2, hw[1] // 2)
    _, rel = compare_outputs(got, expected)
    assert rel <= 1e-4


def test_fixed_export_has_static_shapes(tmp_path, tiny_model):
    model = tiny_model
    report = export_onnx(model, tmp_path / "fixed.onnx", input_hw=(64, 96), batch=2, dynamic=False)
    assert report.inputs == {"input": [2, 3, 64, 96]}
    assert report.outputs == {"out0": [2, 34, 16, 24], "out1": [2, 17, 32, 48]}
    x = np.random.default_rng().standard_normal((2, 3, 64, 96)).astype(np.float32)
    _, rel = compare_outputs(_run(report.path, x), _torch(model, x))
    assert rel <= 1e-4
    assert "verified" in report.summary()


@pytest.mark.parametrize("hw", [(100, 96), (0, 64)])
def test_bad_input_size_is_rejected(tmp_path, hw):
    with pytest.raises(ExportError, match="multiples of 32"):
        export_onnx(build_model("tiny_w8"), tmp_path / "x.onnx", input_hw=hw)
    assert not list(tmp_path.iterdir())


def test_verification_catches_a_wrong_graph(tmp_path, tiny_model):
    """A model whose export differs from its PyTorch output must fail verification."""

    class Drifting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = tiny_model

        def forward(self, x):
            out = self.inner(x)
            if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
                out = [out[0] + 1.0, out[1]]  # the exported graph drifts from eager PyTorch
            return out

    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(Drifting(), tmp_path / "drift.onnx", input_hw=(64, 64))


def test_compare_outputs_relative_error():
    expected = [np.array([[2.0, -4.0]]), np.array([1.0])]
    got = [np.array([[2.0, -4.2]]), np.array([1.0])]
    max_abs, rel = compare_outputs(got, expected)
    assert max_abs == pytest.approx(0.2) and rel == pytest.approx(0.05)


def test_the_default_export_has_a_dynamic_batch_for_the_batching_pipeline(tmp_path, tiny_model):
    report = export_onnx(tiny_model, tmp_path / "default.onnx", input_hw=(64, 96))
    assert report.inputs["input"][1:] == [3, 64, 96] and not isinstance(report.inputs["input"][0], int)
    for batch in (1, 6):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 64, 96)).astype(np.float32)
        _, rel = compare_outputs(_run(report.path, x), _torch(tiny_model, x))
        assert rel <= 1e-4
