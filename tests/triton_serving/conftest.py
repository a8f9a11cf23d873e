"""A real Triton Inference Server for the tests: PyTriton's bundled tritonserver, run from its own virtual
environment (nvidia-pytriton 0.7.0 needs numpy < 2; the project's OpenCV needs numpy >= 2), serving an exported
tiny model through ONNX Runtime behind Triton's dynamic batcher.

The environment's interpreter is $POSE_STREAM_TRITON_PYTHON, or .triton-venv/bin/python in the repository
(`.ci/run` makes it: python -m venv .triton-venv && .triton-venv/bin/pip install nvidia-pytriton==0.7.0
onnxruntime "numpy<2"). Without it the server tests skip, saying so.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from server import TRITON_MISSING, TritonServer, free_port  # noqa: E402, F401 - free_port: for the tests


@pytest.fixture(scope="module")
def served_onnx(tmp_path_factory) -> Path:
    """tiny_w8 with fixed weights, exported with a dynamic batch at 64x96."""
    import torch

    from pose_stream.export import export_onnx
    from pose_stream.models import build_model

    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("triton") / "tiny.onnx"
    export_onnx(build_model("tiny_w8"), path, input_hw=(64, 96))
    return path


@pytest.fixture(scope="module")
def triton_server(served_onnx):
    if TRITON_MISSING:
        pytest.skip(TRITON_MISSING)
    server = TritonServer(served_onnx).start()
    try:
        yield server
    finally:
        server.stop()
