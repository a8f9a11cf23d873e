"""Fixtures shared by test modules. Keep them generic; add yours below.

The folders of tests/ mirror pose_stream/ (decoding/, engine/, models/, pipeline/, ...); tests of top-level
modules sit in tests/ itself. There is no __init__.py: pytest ("prepend" import mode) puts each test file's own
folder on sys.path, so a helper module beside its tests imports by its bare name. Helpers used by tests in
several folders live in tests/support/, put on sys.path here. Module names are global: keep the basenames of
test files and helpers unique across all folders.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

SUPPORT = Path(__file__).resolve().parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))


def reinitialise_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give a model non-trivial weights, in place.

    The default initialisation (std 0.001 convolutions) makes HigherHRNet's outputs ~1e-11, so any
    comparison of backends would pass trivially. Here convolutions get unit-gain weights and
    batch-norm layers random statistics, so outputs are O(1) with structure.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                w = module.weight
                fan_in = w[0].numel() if isinstance(module, nn.Conv2d) else w.shape[0] * w[0, 0].numel()
                w.copy_(torch.randn(w.shape, generator=generator) / fan_in ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model


@pytest.fixture(scope="session")
def tiny_model() -> nn.Module:
    """`tiny_w8` (K = 17) in eval mode with non-trivial weights (see reinitialise_weights)."""
    from pose_stream.models import build_model

    return reinitialise_weights(build_model("tiny_w8"), seed=0).eval()


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model, tmp_path_factory) -> Path:
    """`tiny_model` exported once per session with dynamic batch, height and width."""
    from pose_stream.export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny_w8_dynamic.onnx"
    export_onnx(tiny_model, path, input_hw=(64, 96), batch=1, dynamic=True)
    return path


@pytest.fixture(scope="session")
def w32_model() -> nn.Module:
    """The released W32 architecture (K = 17) with non-trivial weights."""
    from pose_stream.models import build_model

    return reinitialise_weights(build_model("w32_512")).eval()


@pytest.fixture(scope="session")
def w32_dynamic_onnx(w32_model, tmp_path_factory):
    """W32 exported once per session with dynamic batch/height/width at a small example input."""
    from pose_stream.export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "w32_dynamic.onnx"
    report = export_onnx(w32_model, path, input_hw=(128, 192), dynamic=True)
    return path, report


@pytest.fixture
def rng():
    """A fresh, unseeded generator: each run checks new random inputs."""
    import numpy as np

    return np.random.default_rng()
