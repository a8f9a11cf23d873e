"""A Triton Inference Server model repository for a pose-stream network: `<dir>/<name>/1/model.onnx` (or
`model.plan`) and `<dir>/<name>/config.pbtxt`.

The config is read off the model itself: the tensor names, data types and dimensions of the ONNX graph (or of a
TensorRT plan's sidecar), the platform (`onnxruntime_onnx` or `tensorrt_plan`), a `max_batch_size` with the
batch axis left out of the dims, Triton's dynamic batcher (preferred batch sizes, the longest queue delay) and an
instance group. It is written in protobuf text format and parses with Triton's own schema
(`tritonclient.grpc.model_config_pb2`).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pose_stream.atomic import atomic_path, write_text_atomic
from pose_stream.errors import PoseStreamError

ONNX_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16", 6: "TYPE_INT32", 7: "TYPE_INT64", 2: "TYPE_UINT8"}


@dataclass(frozen=True)
class RepositoryOptions:
    """How the model is served.

    Attributes:
        name: the model's name on the server (what clients pass as --triton-model).
        max_batch_size: the largest batch the server forms (frames from every client, flipped copies included).
        preferred_batch_sizes: the batch sizes the dynamic batcher aims for.
        max_queue_delay_us: how long a request may wait for others to join its batch.
        instances: model instances (copies) per device.
        kind: "KIND_GPU" or "KIND_CPU".
    """

    name: str = "pose"
    max_batch_size: int = 16
    preferred_batch_sizes: tuple[int, ...] = (4, 8, 16)
    max_queue_delay_us: int = 2000
    instances: int = 1
    kind: str = "KIND_GPU"

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ "):
            raise PoseStreamError(f"bad model name {self.name!r}: one word, no slashes")
        if self.max_batch_size < 1 or any(not 1 <= b <= self.max_batch_size for b in self.preferred_batch_sizes):
            raise PoseStreamError("preferred batch sizes must lie between 1 and max_batch_size")
        if self.max_queue_delay_us < 0 or self.instances < 1 or self.kind not in ("KIND_GPU", "KIND_CPU"):
            raise PoseStreamError("need max_queue_delay_us >= 0, instances >= 1, kind KIND_GPU or KIND_CPU")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str
    dims: tuple[int, ...]  # without the batch axis; -1 for a dynamic dimension


def onnx_tensors(path: str | os.PathLike) -> tuple[list[TensorSpec], list[TensorSpec], bool]:
    """Inputs and outputs of an ONNX model, and whether its batch axis is dynamic."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}

    def spec(value) -> tuple[TensorSpec, int]:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tensor.shape.dim]
        data_type = ONNX_TYPES.get(tensor.elem_type)
        if data_type is None or len(dims) < 1:
            raise PoseStreamError(f"{path}: tensor {value.name} has a type or shape Triton's config cannot say")
        return TensorSpec(value.name, data_type, tuple(dims[1:])), dims[0]

    inputs = [spec(v) for v in model.graph.input if v.name not in initializers]
    outputs = [spec(v) for v in model.graph.output]
    dynamic_batch = all(batch == -1 for _, batch in inputs + outputs)
    return [s for s, _ in inputs], [s for s, _ in outputs], dynamic_batch


def plan_tensors(path: str | os.PathLike, num_joints: int = 17) -> tuple[list[TensorSpec], list[TensorSpec], str]:
    """Inputs and outputs of a TensorRT plan from its sidecar (`<plan>.json`, written by build-engine), and the
    precision it was built with."""
    from pose_stream.export.onnx_export import INPUT_NAME, OUTPUT_NAMES

    sidecar = Path(f"{path}.json")
    if not sidecar.is_file():
        raise PoseStreamError(f"{path} has no sidecar {sidecar.name}: build the plan with pose-stream build-engine")
    metadata = json.loads(sidecar.read_text(encoding="utf-8"))
    profiles = metadata.get("profiles") or []
    if not profiles:
        raise PoseStreamError(f"{sidecar} lists no optimization profiles")

    def common(index: int) -> int:
        values = {p["min"][index] for p in profiles} | {p["max"][index] for p in profiles}
        return values.pop() if len(values) == 1 else -1

    h, w = common(2), common(3)
    quarter = (lambda v: v // 4 if v > 0 else -1)
    half = (lambda v: v // 2 if v > 0 else -1)
    inputs = [TensorSpec(INPUT_NAME, "TYPE_FP32", (3, h, w))]
    outputs = [TensorSpec(OUTPUT_NAMES[0], "TYPE_FP32", (2 * num_joints, quarter(h), quarter(w))),
               TensorSpec(OUTPUT_NAMES[1], "TYPE_FP32", (num_joints, half(h), half(w)))]
    return inputs, outputs, str(metadata.get("precision", "fp16"))


def model_config(platform: str, inputs: list[TensorSpec], outputs: list[TensorSpec], options: RepositoryOptions,
                 precision: str | None = None) -> str:
    """config.pbtxt text for the model."""
    def tensors(kind: str, specs: list[TensorSpec]) -> str:
        body = ",\n".join(f'  {{\n    name: "{s.name}"\n    data_type: {s.data_type}\n    dims: [ '
                          f'{", ".join(map(str, s.dims))} ]\n  }}' for s in specs)
        return f"{kind} [\n{body}\n]\n"

    preferred = ", ".join(str(b) for b in options.preferred_batch_sizes)
    text = (f'name: "{options.name}"\nplatform: "{platform}"\nmax_batch_size: {options.max_batch_size}\n'
            + tensors("input", inputs) + tensors("output", outputs)
            + f"dynamic_batching {{\n  preferred_batch_size: [ {preferred} ]\n"
              f"  max_queue_delay_microseconds: {options.max_queue_delay_us}\n}}\n"
            + f"instance_group [\n  {{\n    count: {options.instances}\n    kind: {options.kind}\n  }}\n]\n")
    if precision:
        # A plan carries its own precision; the parameter tells a reader what it was built with.
        text += f'parameters {{\n  key: "precision"\n  value {{ string_value: "{precision}" }}\n}}\n'
    return text


def parse_config(text: str):
    """The config as Triton's own protobuf message (PoseStreamError when it does not parse)."""
    from google.protobuf import text_format

    from pose_stream._optional import require

    schema = require("tritonclient.grpc.model_config_pb2", "checking a Triton model config")
    try:
        return text_format.Parse(text, schema.ModelConfig())
    except text_format.ParseError as exc:
        raise PoseStreamError(f"the written config.pbtxt does not parse with Triton's schema: {exc}") from None


def write_repository(out_dir: str | os.PathLike, model_file: str | os.PathLike, options: RepositoryOptions,
                     overwrite: bool = False) -> Path:
    """Write `<out_dir>/<name>/1/model.onnx|model.plan` and `<out_dir>/<name>/config.pbtxt`; returns the
    model's folder. An existing model folder is replaced only with `overwrite`."""
    model_file = Path(model_file)
    suffix = model_file.suffix.lower()
    if suffix == ".onnx":
        inputs, outputs, dynamic_batch = onnx_tensors(model_file)
        if not dynamic_batch:
            raise PoseStreamError(f"{model_file} has a fixed batch: export it again (pose-stream export makes the "
                                  "batch dynamic), so that the server can batch requests")
        platform, target_name, precision = "onnxruntime_onnx", "model.onnx", None
    elif suffix in (".plan", ".engine", ".trt"):
        inputs, outputs, precision = plan_tensors(model_file)
        platform, target_name = "tensorrt_plan", "model.plan"
    else:
        raise PoseStreamError(f"{model_file}: give an ONNX model (.onnx) or a TensorRT plan (.plan)")
    text = model_config(platform, inputs, outputs, options, precision)
    parse_config(text)
    folder = Path(out_dir) / options.name
    if folder.exists() and not overwrite:
        raise PoseStreamError(f"{folder} exists: pass --overwrite to replace it")
    (folder / "1").mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "1" / target_name) as tmp:
        shutil.copyfile(model_file, tmp)
    write_text_atomic(folder / "config.pbtxt", text)
    return folder
