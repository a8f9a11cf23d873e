"""One list of backends (engine/registry.py): names, model-file suffixes, resolution, and the one opener."""
from __future__ import annotations

import pytest

from pose_stream.engine.registry import (
    BACKEND_CHOICES, BACKENDS, framework_of_file, get_backend, open_backend, resolve_backend,
)
from pose_stream.errors import PoseStreamError


@pytest.mark.parametrize("path, framework", [
    ("w32.pth", "torch"), ("W32.PT", "torch"), ("m.onnx", "onnxruntime"), ("m.plan", "tensorrt"),
    ("m.engine", "tensorrt"), ("m.trt", "tensorrt"), ("m.bin", None), ("model", None),
])
def test_a_model_file_names_its_framework_by_suffix(path, framework):
    assert framework_of_file(path) == framework


@pytest.mark.parametrize("name, model_file, given_as, precision, expected", [
    ("auto", None, None, None, "torch"),
    ("auto", "w.pth", None, None, "torch"),
    ("auto", "w.pth", None, "fp16", "torch-fp16"),
    ("auto", "m.onnx", None, None, "onnxruntime"),
    ("auto", "m.engine", None, None, "tensorrt"),
    ("auto", "exported.bin", "onnxruntime", None, "onnxruntime"),   # --onnx says what it is, whatever its name
    ("torch", "w.pth", None, None, "torch"),
    ("torch-fp16", None, None, None, "torch-fp16"),
    ("onnxruntime", "m.onnx", None, None, "onnxruntime"),
    ("TensorRT", "m.plan", None, None, "tensorrt"),
])
def test_resolution(name, model_file, given_as, precision, expected):
    assert resolve_backend(name, model_file, given_as, precision).name == expected


@pytest.mark.parametrize("name, model_file, given_as, fragments", [
    ("torch", "m.onnx", None, ["m.onnx is a ONNX model", "onnxruntime backend", "'torch' was asked for"]),
    ("onnxruntime", "w.pth", None, ["PyTorch checkpoint", "'onnxruntime'", "--onnx"]),
    ("tensorrt", "m.onnx", "onnxruntime", ["'tensorrt'", "--engine"]),
    ("onnxruntime", None, None, ["backend 'onnxruntime' needs onnx=PATH"]),
    ("tensorrt", None, None, ["backend 'tensorrt' needs engine=PATH"]),
    ("caffe", None, None, ["unknown backend 'caffe'", "auto, torch, torch-fp16, onnxruntime, tensorrt"]),
    ("auto", "model.bin", None, ["cannot tell which backend runs model.bin", ".onnx"]),
])
def test_mismatches_are_one_line_naming_both(name, model_file, given_as, fragments):
    with pytest.raises(PoseStreamError) as err:
        resolve_backend(name, model_file, given_as)
    message = str(err.value)
    assert "\n" not in message and all(f in message for f in fragments), message


def test_one_list_serves_every_subcommand():
    import argparse

    from pose_stream.cli.main import build_parser

    assert BACKEND_CHOICES == ("auto", *BACKENDS) and get_backend("torch-fp16").precision == "fp16"
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("run", "eval"):
        helps = {a.dest: a for a in subparsers.choices[command]._actions}
        assert helps["backend"].metavar == "{" + ",".join(BACKEND_CHOICES) + "}", command
    bench = {a.dest: a for a in subparsers.choices["bench"]._actions}
    assert all(name in bench["backend"].help for name in BACKENDS)


def test_open_backend_builds_torch_from_a_config_and_onnxruntime_from_a_file(tiny_onnx):
    with open_backend(get_backend("torch"), model="tiny_w8", device="cpu") as torch_backend:
        assert torch_backend.info.name == "torch" and torch_backend.num_joints == 17
    with open_backend(get_backend("onnxruntime"), tiny_onnx, device="cpu") as ort_backend:
        assert (ort_backend.info.name, ort_backend.info.detail) == ("onnxruntime", "CPU")
    with pytest.raises(PoseStreamError, match="needs a ONNX model"):
        open_backend(get_backend("onnxruntime"))
