"""pose-stream triton-repo: the model repository, with a config that parses with Triton's own schema."""
from __future__ import annotations

import json

import pytest

from pose_stream.errors import PoseStreamError
from pose_stream.export import export_onnx
from pose_stream.export.triton_repo import RepositoryOptions, parse_config, write_repository
from pose_stream.models import build_model


@pytest.mark.parametrize("dynamic, dims0", [("batch", [3, 64, 96]), (True, [3, -1, -1])])
def test_an_onnx_repository_reads_names_types_and_dims_off_the_model(tmp_path, dynamic, dims0):
    onnx = tmp_path / "m.onnx"
    export_onnx(build_model("tiny_w8"), onnx, input_hw=(64, 96), dynamic=dynamic)
    folder = write_repository(tmp_path / "repo", onnx, RepositoryOptions(name="w", max_batch_size=8,
                                                                          preferred_batch_sizes=(2, 8)))
    assert (folder / "1" / "model.onnx").read_bytes() == onnx.read_bytes()
    config = parse_config((folder / "config.pbtxt").read_text())
    assert (config.name, config.platform, config.max_batch_size) == ("w", "onnxruntime_onnx", 8)
    assert [(t.name, list(t.dims)) for t in config.input] == [("input", dims0)]
    out_dims = [[34, 16, 24], [17, 32, 48]] if dynamic == "batch" else [[34, -1, -1], [17, -1, -1]]
    assert [(t.name, list(t.dims)) for t in config.output] == list(zip(["out0", "out1"], out_dims))
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 8]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert config.instance_group[0].count == 1


def test_a_plan_repository_comes_from_the_sidecar_and_says_its_precision(tmp_path):
    plan = tmp_path / "w.plan"
    plan.write_bytes(b"plan bytes")
    (tmp_path / "w.plan.json").write_text(json.dumps({"precision": "fp16", "profiles": [
        {"min": [1, 3, 512, 960], "opt": [16, 3, 512, 960], "max": [16, 3, 512, 960]}]}))
    folder = write_repository(tmp_path / "repo", plan, RepositoryOptions())
    config = parse_config((folder / "config.pbtxt").read_text())
    assert config.platform == "tensorrt_plan" and (folder / "1" / "model.plan").read_bytes() == b"plan bytes"
    assert [list(t.dims) for t in config.output] == [[34, 128, 240], [17, 256, 480]]
    assert config.parameters["precision"].string_value == "fp16"


def test_refusals(tmp_path):
    onnx = tmp_path / "fixed.onnx"
    export_onnx(build_model("tiny_w8"), onnx, input_hw=(64, 96), dynamic=False)
    with pytest.raises(PoseStreamError, match="fixed batch"):
        write_repository(tmp_path / "repo", onnx, RepositoryOptions())
    dynamic = tmp_path / "d.onnx"
    export_onnx(build_model("tiny_w8"), dynamic, input_hw=(64, 96))
    write_repository(tmp_path / "repo", dynamic, RepositoryOptions())
    with pytest.raises(PoseStreamError, match="--overwrite"):
        write_repository(tmp_path / "repo", dynamic, RepositoryOptions())
    with pytest.raises(PoseStreamError, match="preferred batch sizes"):
        RepositoryOptions(max_batch_size=4, preferred_batch_sizes=(8,))
    with pytest.raises(PoseStreamError, match="does not parse"):
        parse_config('name: "x"\nmax_batch_size: "many"\n')
