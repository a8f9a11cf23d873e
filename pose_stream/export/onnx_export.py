"""PyTorch -> ONNX export of HigherHRNet, checked structurally and verified numerically with ONNX Runtime."""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pose_stream.atomic import atomic_path
from pose_stream.errors import PoseStreamError
from pose_stream.input_size import MULTIPLE

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAMES = ("out0", "out1")
# What TensorRT's ONNX parser must meet in our graph; Constant only feeds Resize scales.
ALLOWED_OPS = frozenset({"Conv", "ConvTranspose", "BatchNormalization", "Relu", "Add", "Concat", "Resize", "Constant"})
MAX_RELATIVE_ERROR = 1e-4


class ExportError(PoseStreamError):
    """The export failed or its verification did not pass."""


@dataclass(frozen=True)
class ExportReport:
    """Summary of one export.

    relative_error is max |onnx - torch| / max |torch| over both outputs (a scale-aware bound that,
    unlike an element-wise ratio, is not dominated by values near zero).
    """

    path: Path
    opset: int
    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]
    ops: dict[str, int]
    size_bytes: int
    max_abs_error: float
    relative_error: float

    def summary(self) -> str:
        def fmt(shapes: dict[str, list[int | str]]) -> str:
            return ", ".join(f"{n} [{'x'.join(map(str, s))}]" for n, s in shapes.items())

        return "\n".join([
            f"wrote      {self.path} ({self.size_bytes / 1e6:.1f} MB, opset {self.opset})",
            f"inputs     {fmt(self.inputs)}",
            f"outputs    {fmt(self.outputs)}",
            f"ops        {', '.join(f'{k} x{v}' for k, v in sorted(self.ops.items()))}",
            f"verified   ONNX Runtime vs PyTorch: max abs error {self.max_abs_error:.2e}, "
            f"relative {self.relative_error:.2e} (limit {MAX_RELATIVE_ERROR:.0e})",
        ])


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    input_hw: tuple[int, int] = (512, 960),
    batch: int = 1,
    dynamic: bool | str = "batch",
    *,
    opset: int = 17,
    verify: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export `model` to ONNX at `path`, check the graph and verify it against PyTorch.

    Args:
        model: a HigherHRNet (any module with the same two outputs).
        input_hw: (H, W) of the example input, both multiples of 32.
        batch: N of the example input.
        dynamic: which dimensions are dynamic: "batch" (the default: the pipeline batches frames from several
            cameras, and TensorRT engines are built for a batch range), True (batch, height and width) or False
            (none: a fully static model).
        verify: compare ONNX Runtime with PyTorch on a random input; raise ExportError above 1e-4 relative.
        progress: called with a short message before each step.
    Returns:
        An ExportReport (shapes, ops, size, verification errors).
    """
    step = progress or (lambda message: log.info(message))
    h, w = input_hw
    if h % MULTIPLE or w % MULTIPLE or h <= 0 or w <= 0:
        raise ExportError(f"input size must be positive multiples of {MULTIPLE}, got {h}x{w}")
    if opset < 17:
        raise ExportError(f"opset must be >= 17, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    example = torch.randn(batch, 3, h, w)

    step("tracing and exporting the network")
    axes = {0: "batch", 2: "height", 3: "width"}
    out_axes = {
        OUTPUT_NAMES[0]: {0: "batch", 2: "height_4", 3: "width_4"},  # 1/4 of the input
        OUTPUT_NAMES[1]: {0: "batch", 2: "height_2", 3: "width_2"},  # 1/2 of the input
    }
    if dynamic == "batch":
        axes = {0: "batch"}
        out_axes = {name: {0: "batch"} for name in out_axes}
    dynamic_axes = {INPUT_NAME: axes, **out_axes} if dynamic else None
    # Written next to the target and renamed, so an interrupted export never leaves a half-written model.
    with atomic_path(path) as tmp:
        tmp_name = str(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                torch.onnx.export(
                    model, (example,), tmp_name, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                    opset_version=opset, dynamic_axes=dynamic_axes, do_constant_folding=True, dynamo=False,
                )
        import onnx

        graph_model = onnx.load(tmp_name)
        step("cleaning and checking the graph")
        removed = remove_identity_nodes(graph_model)
        if removed:
            log.debug("removed %d Identity nodes", removed)
        onnx.checker.check_model(graph_model)
        graph_model = onnx.shape_inference.infer_shapes(graph_model, strict_mode=True)
        ops = count_ops(graph_model)
        unsupported = sorted(set(ops) - ALLOWED_OPS)
        if unsupported:
            raise ExportError(f"the exported graph uses ops outside the TensorRT-safe set: {', '.join(unsupported)}")
        onnx.save(graph_model, tmp_name)

    max_abs = rel = float("nan")
    if verify:
        step("verifying ONNX Runtime against PyTorch")
        max_abs, rel = verify_onnx(model, path, example)
    inputs, outputs = io_shapes(graph_model)
    return ExportReport(
        path=path, opset=opset, inputs=inputs, outputs=outputs, ops=ops,
        size_bytes=path.stat().st_size, max_abs_error=max_abs, relative_error=rel,
    )


def verify_onnx(model: nn.Module, path: str | os.PathLike, example: torch.Tensor) -> tuple[float, float]:
    """Max abs and relative error of ONNX Runtime vs PyTorch on `example`; ExportError above the limit."""
    import onnxruntime as ort

    with torch.no_grad():
        expected = [t.numpy() for t in model(example)]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: example.numpy()})
    max_abs, rel = compare_outputs(got, expected)
    if not rel <= MAX_RELATIVE_ERROR:
        raise ExportError(
            f"ONNX Runtime output differs from PyTorch: relative error {rel:.2e} > {MAX_RELATIVE_ERROR:.0e} "
            f"(max abs {max_abs:.2e})"
        )
    return max_abs, rel


def compare_outputs(got: list[np.ndarray], expected: list[np.ndarray]) -> tuple[float, float]:
    """(max abs error, max abs error / max |expected|) over paired outputs of equal shapes."""
    max_abs = 0.0
    rel = 0.0
    for g, e in zip(got, expected, strict=True):
        if g.shape != e.shape:
            raise ExportError(f"output shape {g.shape} differs from the expected {e.shape}")
        err = float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64))))
        max_abs = max(max_abs, err)
        rel = max(rel, err / max(float(np.max(np.abs(e))), 1e-12))
    return max_abs, rel


def remove_identity_nodes(model) -> int:
    """Bypass every Identity node (rewire its consumers to its input); returns how many were removed."""
    graph = model.graph
    graph_outputs = {o.name for o in graph.output}
    removed = 0
    for node in [n for n in graph.node if n.op_type == "Identity"]:
        src, dst = node.input[0], node.output[0]
        if dst in graph_outputs:
            # Keep the graph's output name: rename the producer of `src` instead.
            for producer in graph.node:
                for i, name in enumerate(producer.output):
                    if name == src:
                        producer.output[i] = dst
            for consumer in graph.node:
                for i, name in enumerate(consumer.input):
                    if name == src:
                        consumer.input[i] = dst
        else:
            for consumer in graph.node:
                for i, name in enumerate(consumer.input):
                    if name == dst:
                        consumer.input[i] = src
        graph.node.remove(node)
        removed += 1
    return removed


def count_ops(model) -> dict[str, int]:
    ops: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return ops


def io_shapes(model) -> tuple[dict[str, list[int | str]], dict[str, list[int | str]]]:
    def shape(value) -> list[int | str]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return ({v.name: shape(v) for v in model.graph.input}, {v.name: shape(v) for v in model.graph.output})
