"""Shared fixtures. Exports are expensive: each model is exported once per session."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pose_stream.models import build_model


def randomize_weights(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give a model non-trivial weights and BN statistics (the default init yields near-zero outputs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
            elif name.endswith("running_mean") or name.endswith("bias"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen))
            elif tensor.dim() > 1:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * (1.0 / fan_in) ** 0.5)
            else:
                tensor.copy_(1.0 + 0.1 * torch.randn(tensor.shape, generator=gen))
    return model.eval()


@pytest.fixture(scope="session")
def w32_model() -> torch.nn.Module:
    return randomize_weights(build_model("w32_512"))


@pytest.fixture(scope="session")
def w32_dynamic_onnx(w32_model, tmp_path_factory):
    """W32 exported once with dynamic batch/height/width, at a small example input."""
    from pose_stream.export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "w32_dynamic.onnx"
    report = export_onnx(w32_model, path, input_hw=(128, 192), dynamic=True)
    return path, report


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng()
